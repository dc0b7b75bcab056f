import { execFileSync, spawn } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteStorage } from "../../adapters/storage/sqlite/index.js";
import { cliArgs, exited, transcript, workspace } from "./cli-harness.js";

const space = workspace();
afterAll(() => space.remove());

const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;

describe("kilo chat in a terminal", () => {
  it("has util-linux `script` to give the chat a pseudo-terminal", () => {
    expect(execFileSync("script", ["--version"], { encoding: "utf8" })).toContain("util-linux");
  });

  it("creates a bot with the /new soul wizard, chats with a spinner and streamed replies, shows /cost and quits", async () => {
    // `script` runs the chat on a pseudo-terminal; what we write to its stdin is typed into it.
    const command = [process.execPath, ...cliArgs(["chat"])].map(quote).join(" ");
    const child = spawn("script", ["-qfec", command, "/dev/null"], { cwd: space.cwd, env: space.env });
    const screen = transcript(child, ["stdout"]);
    const type = (line: string) => child.stdin.write(`${line}\r`);

    await screen.expect(/created bot "Kilo"/);
    await screen.expect(/kilo chat: talking to Kilo \(model: offline\)/);
    await screen.expect(/you > /);
    type("ping");
    // The spinner shows while the model works, then the reply streams in.
    await screen.expect(/Kilo is thinking\.\.\./);
    await screen.expect(/Kilo > pong/);

    await screen.expect(/you > /);
    type("/new");
    const answers: Array<[RegExp, string]> = [
      [/Name: /, "Crumb"],
      [/Tone, e\.g\. warm, direct, playful: /, "warm"],
      [/Energy, e\.g\. calm, upbeat: /, ""],
      [/Traits, e\.g\. organised, curious \(separate with ','\): /, "organised, encouraging"],
      [/Values \(separate with ';'\): /, "Never lose an order; Be honest"],
      [/Verbosity \(concise, balanced, detailed\) \[balanced\]: /, "con"],
      [/Formality \(casual, neutral, formal\) \[neutral\]: /, "sloppy"],
      [/Please answer one of: casual, neutral, formal\.[\s\S]*Formality .*: /, "casual"],
      [/Formatting \(plain, markdown\) \[markdown\]: /, "plain"],
      [/Always \(separate with ';'\): /, "Confirm what you stored"],
      [/Never \(separate with ';'\): /, "Invent orders"],
      [/When a request is ambiguous, it should: /, "Ask one short question"],
      [/Create Crumb\? \[Y\/n\]: /, "y"],
    ];
    for (const [prompt, answer] of answers) {
      await screen.expect(prompt);
      type(answer);
    }
    await screen.expect(/Created Crumb \(bot_\w+\)\.\s+Now talking to Crumb\./);

    await screen.expect(/you > /);
    type("hello there");
    await screen.expect(/Crumb > \(offline model\) You said: "hello there"/);

    await screen.expect(/you > /);
    type("/bots");
    await screen.expect(/ {2}1\. Kilo .*\s+\* 2\. Crumb /);

    await screen.expect(/you > /);
    type("/cost");
    await screen.expect(/Total: \$0\.0000 over \d+ LLM calls/);
    await screen.expect(/By bot:\s+Kilo: \$0\.0000 \(\d+ calls?\)\s+Crumb: \$0\.0000/);

    await screen.expect(/you > /);
    type("/skills");
    await screen.expect(/Crumb has no skills yet/);

    await screen.expect(/you > /);
    type("/quit");
    await screen.expect(/Bye\./);
    expect((await exited(child)).code).toBe(0);

    // The wizard's answers became Crumb's five-layer soul.
    const storage = sqliteStorage({ filename: space.database });
    try {
      const crumb = (await storage.bots.listByUser("local", { limit: 10 })).items.find(
        (bot) => bot.name === "Crumb",
      );
      expect(crumb?.soul).toEqual({
        personalityTraits: { tone: "warm", traits: ["organised", "encouraging"] },
        valuesAndPrinciples: ["Never lose an order", "Be honest"],
        communicationStyle: { verbosity: "concise", formality: "casual", formatting: "plain" },
        behavioralRules: { always: ["Confirm what you stored"], never: ["Invent orders"] },
        decisionFramework: { ambiguity: "Ask one short question" },
      });
    } finally {
      await storage.close();
    }
  });
});
