/**
 * The peer: Mastra's benchmark from `../shared/peers/mastra`, installed at
 * run time into a scratch folder outside the repository, with the exact
 * versions of its package.json and package-lock.json. Mastra is never a
 * dependency of kilo and none of its code is committed here.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { repoRoot } from "../support.js";

/**
 * Where the peer's benchmark lives: next to the repository, like the CLINC150
 * corpus. KILO_PEER_SOURCE overrides it (run.ts passes it to the bundled kilo
 * workload, which does not sit in bench/).
 */
export const PEER_SOURCE = process.env.KILO_PEER_SOURCE ?? resolve(repoRoot, "../shared/peers/mastra");

/** The scratch install; reused while its lock file is unchanged. Override with KILO_PEERS_DIR. */
export const PEER_DIR = process.env.KILO_PEERS_DIR ?? join(tmpdir(), "kilo-peers-mastra");

const FILES = ["package.json", "package-lock.json"] as const;
const MARKER = ".kilo-peer-install";

/** The installed peer: its folder and the versions found in its node_modules. */
export interface PeerInstall {
  dir: string;
  benchFile: string;
  versions: Record<string, string>;
  reused: boolean;
}

function fingerprint(): string {
  const hash = createHash("sha256");
  for (const file of FILES) hash.update(readFileSync(join(PEER_SOURCE, file)));
  return hash.digest("hex");
}

function npm(args: string[], log: (line: string) => void): boolean {
  log(`  npm ${args.join(" ")} (in ${PEER_DIR})`);
  const result = spawnSync("npm", args, {
    cwd: PEER_DIR,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 64 * 2 ** 20,
  });
  if (result.status === 0) return true;
  const tail = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim().split("\n").slice(-8).join("\n    ");
  log(`  npm ${args[0]} failed (status ${result.status}):\n    ${tail}`);
  return false;
}

/** The exact versions the peer's package.json pins, read back from the scratch node_modules. */
function installedVersions(): Record<string, string> {
  const pinned = JSON.parse(readFileSync(join(PEER_SOURCE, "package.json"), "utf8")) as {
    dependencies: Record<string, string>;
  };
  const versions: Record<string, string> = {};
  for (const [name, wanted] of Object.entries(pinned.dependencies)) {
    const file = join(PEER_DIR, "node_modules", name, "package.json");
    if (!existsSync(file)) throw new Error(`peer install: ${name} is missing from ${PEER_DIR}/node_modules`);
    const { version } = JSON.parse(readFileSync(file, "utf8")) as { version: string };
    if (version !== wanted) {
      throw new Error(`peer install: ${name} is ${version}, the peer's package.json pins ${wanted}`);
    }
    versions[name] = version;
  }
  return versions;
}

/**
 * Installs the peer into {@link PEER_DIR} unless the same lock is already
 * installed there. `npm ci` first; when it fails (this machine's registry may
 * lack another platform's optional binary), `npm install` with the same lock.
 * The peer's bench.mjs is copied in on every call, so the shared copy rules.
 */
export function installPeer(log: (line: string) => void = console.error): PeerInstall {
  if (!existsSync(join(PEER_SOURCE, "bench.mjs"))) {
    throw new Error(
      `The peer benchmark is missing: expected ${PEER_SOURCE}/bench.mjs next to the repository`,
    );
  }
  const wanted = fingerprint();
  const markerFile = join(PEER_DIR, MARKER);
  let reused = existsSync(markerFile) && readFileSync(markerFile, "utf8").trim() === wanted;
  if (reused) {
    try {
      installedVersions();
    } catch {
      reused = false;
    }
  }
  if (!reused) {
    log(`Installing the peer (Mastra) into ${PEER_DIR} ...`);
    rmSync(PEER_DIR, { recursive: true, force: true });
    mkdirSync(PEER_DIR, { recursive: true });
    for (const file of FILES) copyFileSync(join(PEER_SOURCE, file), join(PEER_DIR, file));
    const quiet = ["--no-audit", "--no-fund", "--loglevel=error"];
    if (!npm(["ci", ...quiet], log) && !npm(["install", ...quiet], log)) {
      throw new Error(`Could not install the peer into ${PEER_DIR}; see the npm output above`);
    }
    writeFileSync(markerFile, `${wanted}\n`);
  }
  const benchFile = join(PEER_DIR, "bench.mjs");
  copyFileSync(join(PEER_SOURCE, "bench.mjs"), benchFile);
  return { dir: PEER_DIR, benchFile, versions: installedVersions(), reused };
}
