/**
 * Drives kilo studio in a real browser: Debian's Chromium (never downloaded) through
 * playwright-core, headless, against servers on 127.0.0.1 only. Screenshots go to
 * `test-artifacts/studio/` (ignored by git; CI keeps them as artifacts).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { expect } from "vitest";
import {
  cliArgs,
  exited,
  type Transcript,
  transcript,
  type Workspace,
  workspace,
} from "../cli/cli-harness.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
/** Where screenshots are written. */
export const ARTIFACTS = join(root, "test-artifacts/studio");

/** Debian's Chromium package; CI installs it (`.ci/run`). */
export const CHROMIUM = "/usr/bin/chromium";

/** Starts headless Chromium with nothing that reaches the network on its own. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Saves a full-page screenshot as `test-artifacts/studio/<name>.png`. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/**
 * Collects the script errors and console errors (a CSP violation, say) the page reports. The
 * browser's own line for an API error answer is left out: the studio shows those, and tests check.
 */
export function watchForErrors(page: Page): string[] {
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (
      message.type() === "error" &&
      !/^Failed to load resource: the server responded with a status of 4\d\d/.test(message.text())
    ) {
      problems.push(`console: ${message.text()}`);
    }
  });
  return problems;
}

/** A running `kilo serve` (the CLI from source, as a child process) with its own SQLite database. */
export interface ServeProcess {
  url: string;
  botId: string;
  space: Workspace;
  child: ChildProcessWithoutNullStreams;
  stdout: Transcript;
  /** Calls the API as a script would (loopback, or with the token). */
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
  stop(): Promise<void>;
}

/** Starts `kilo serve` on a free port with the offline model, and resolves once it listens. */
export async function startServe(env: Record<string, string> = {}): Promise<ServeProcess> {
  const space = workspace({ KILO_PORT: "0", KILO_PROVIDER: "offline", ...env });
  const child = spawn(process.execPath, cliArgs(["serve"]), { cwd: space.cwd, env: space.env });
  child.stdin.end();
  const stdout = transcript(child, ["stdout"]);
  transcript(child, ["stderr"]);
  const [, url] = await stdout.expect(/kilo API listening on (http:\/\/127\.0\.0\.1:\d+)\n/);
  const [, botId] = await stdout.expect(/bot: Kilo \((bot_\w+)\)/);
  const token = env.KILO_API_TOKEN;
  return {
    url: url!,
    botId: botId!,
    space,
    child,
    stdout,
    async api<T>(method: string, path: string, body?: unknown): Promise<T> {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
      return (text === "" ? undefined : JSON.parse(text)) as T;
    },
    async stop() {
      child.kill("SIGTERM");
      expect(await exited(child)).toEqual({ code: 0, signal: null });
      space.remove();
    },
  };
}

// The checks below run inside the page (page.evaluate), where the DOM is; they are JavaScript
// source because this project's TypeScript targets Node, without the DOM's types.

const CONTRAST_CHECK = `() => {
  const parse = (color) => {
    const parts = (/rgba?\\(([^)]+)\\)/.exec(color)?.[1] ?? "0 0 0 0").split(/[,\\s/]+/).filter(Boolean).map(Number);
    return [parts[0] ?? 0, parts[1] ?? 0, parts[2] ?? 0, parts[3] ?? 1];
  };
  const channel = (value) => {
    const c = value / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const backgroundOf = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const color = parse(getComputedStyle(node).backgroundColor);
      if (color[3] > 0.5) return color;
    }
    return [255, 255, 255, 1];
  };
  const problems = [];
  for (const element of document.querySelectorAll("body *")) {
    const ownText = [...element.childNodes].some(
      (node) => node.nodeType === Node.TEXT_NODE && (node.textContent ?? "").trim() !== "",
    );
    if (!ownText || element.closest("option, [hidden], .visually-hidden, :disabled")) continue;
    if (element.getClientRects().length === 0) continue;
    const style = getComputedStyle(element);
    if (style.visibility === "hidden") continue;
    const svg = element instanceof SVGElement;
    const foreground = parse(svg ? style.fill : style.color);
    const background = backgroundOf(svg ? element.closest("svg") : element);
    const [light, dark] = [luminance(foreground), luminance(background)].sort((a, b) => b - a);
    const ratio = (light + 0.05) / (dark + 0.05);
    if (ratio < 4.5) {
      const text = (element.textContent ?? "").trim().slice(0, 40);
      problems.push(ratio.toFixed(2) + ':1 "' + text + '" (' + element.tagName.toLowerCase() + "." + (element.getAttribute("class") ?? "") + ")");
    }
  }
  return problems;
}`;

const LABEL_CHECK = `() => {
  const missing = [];
  for (const control of document.querySelectorAll("input, select, textarea, button, a[href], [role=tab]")) {
    if (control.closest("[hidden]") || control.getClientRects().length === 0) continue;
    const named = (text) => (text ?? "").trim() !== "";
    const labelled =
      (control.labels?.length ?? 0) > 0 ||
      named(control.getAttribute("aria-label")) ||
      (control.getAttribute("aria-labelledby") ?? "").split(/\\s+/).some((id) => named(document.getElementById(id)?.textContent)) ||
      ((control.tagName === "BUTTON" || control.tagName === "A" || control.getAttribute("role") === "tab") && named(control.textContent));
    if (!labelled) missing.push(control.outerHTML.slice(0, 80));
  }
  return missing;
}`;

const FOCUS_CHECK = `() => {
  const element = document.activeElement;
  const style = element ? getComputedStyle(element) : null;
  return {
    tag: element?.tagName.toLowerCase() ?? "",
    text: (element?.getAttribute("aria-label") ?? element?.textContent ?? "").trim().slice(0, 60),
    outline: style ? style.outlineStyle + " " + style.outlineWidth : "",
  };
}`;

/** WCAG contrast problems of the visible text on the page: every one under 4.5:1. */
export function contrastProblems(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(`(${CONTRAST_CHECK})()`);
}

/** Controls on the page without an accessible name (label, aria-label, aria-labelledby or text). */
export function unlabelledControls(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(`(${LABEL_CHECK})()`);
}

/** Whether the page scrolls sideways (it must not, down to a phone's 375 px). */
export function overflowsSideways(page: Page): Promise<boolean> {
  return page.evaluate<boolean>(
    "document.documentElement.scrollWidth > document.documentElement.clientWidth",
  );
}

/** What has focus: tag, text or label, and its outline, for keyboard tests. */
export function focused(page: Page): Promise<{ tag: string; text: string; outline: string }> {
  return page.evaluate<{ tag: string; text: string; outline: string }>(`(${FOCUS_CHECK})()`);
}

/**
 * Adds faint text and an unlabelled field to the page: what the checks above must catch. They go
 * in a box of their own under `body`, outside the app's root, so a re-render of the view (data
 * arriving late) cannot remove them between the two checks.
 */
export function plantProblems(page: Page): Promise<void> {
  return page.evaluate<void>(`(() => {
    const box = document.createElement("div");
    box.style.background = "#ffffff";
    const faint = document.createElement("p");
    faint.textContent = "faint";
    faint.style.color = "#aaaaaa";
    box.append(faint, document.createElement("input"));
    document.body.append(box);
  })()`);
}
