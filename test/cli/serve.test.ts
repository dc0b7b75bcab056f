import { spawn } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { cliArgs, exited, transcript, workspace } from "./cli-harness.js";

const spaces: Array<ReturnType<typeof workspace>> = [];
afterAll(() => {
  for (const space of spaces) space.remove();
});

/** Starts `kilo serve` on a free port and resolves with its URL once it listens. */
async function serve(env: Record<string, string> = {}) {
  const space = workspace({ KILO_PORT: "0", ...env });
  spaces.push(space);
  const child = spawn(process.execPath, cliArgs(["serve"]), { cwd: space.cwd, env: space.env });
  child.stdin.end();
  const stdout = transcript(child, ["stdout"]);
  const stderr = transcript(child, ["stderr"]);
  const [, url] = await stdout.expect(/kilo API listening on (http:\/\/127\.0\.0\.1:\d+)\n/);
  return { child, url: url!, stdout, stderr };
}

describe("kilo serve", () => {
  it("serves the HTTP API for the configured user and exits 0 on SIGTERM", async () => {
    const { child, url, stdout, stderr } = await serve();
    const [, botId] = await stdout.expect(/bot: Kilo \((bot_\w+)\)/);
    await stdout.expect(/auth: none \(loopback only\)/);

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);

    // Every request acts for the configured user ('local'), who owns the bot created at start.
    const chat = await fetch(`${url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ botId, message: "ping" }),
    });
    expect(chat.status).toBe(200);
    expect(await chat.json()).toMatchObject({ reply: "pong" });

    // The durable path: POST /v1/events, then GET /v1/runs/:id until it is done.
    const event = await fetch(`${url}/v1/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        schema_version: 1,
        type: "http.message",
        conversation_key: "http:1",
        user_key: "local",
        text: "ping",
        bot_id: botId,
      }),
    });
    const { run_id: runId } = (await event.json()) as { run_id: string };
    let run: { status?: string; output?: { reply?: string } } = {};
    for (let attempt = 0; attempt < 500 && run.status !== "succeeded"; attempt += 1) {
      run = (await (await fetch(`${url}/v1/runs/${runId}`)).json()) as typeof run;
    }
    expect(run).toMatchObject({ status: "succeeded", output: { reply: "pong" } });

    // A web page in the user's browser may not call it.
    const fromPage = await fetch(`${url}/api/users/local/bots`, {
      headers: { origin: "https://evil.example" },
    });
    expect(fromPage.status).toBe(403);

    child.kill("SIGTERM");
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    expect(stderr.text).toContain("SIGTERM: shutting down");
  });

  it("requires the bearer token when KILO_API_TOKEN is set", async () => {
    const token = "test-token-0123456789abcdef";
    const { child, url, stdout } = await serve({ KILO_API_TOKEN: token });
    await stdout.expect(/auth: bearer token \(KILO_API_TOKEN\)/);
    const anonymous = await fetch(`${url}/api/users/local/bots`);
    expect(anonymous.status).toBe(401);
    const wrong = await fetch(`${url}/api/users/local/bots`, { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    const right = await fetch(`${url}/api/users/local/bots`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(right.status).toBe(200);
    expect(await right.json()).toMatchObject({ items: [{ name: "Kilo", userId: "local" }] });
    child.kill("SIGINT");
    expect(await exited(child)).toEqual({ code: 0, signal: null });
  });
});
