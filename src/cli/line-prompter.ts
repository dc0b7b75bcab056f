import { createInterface } from "node:readline";
import type { CliIo } from "./cli-io.js";

/** Asks for lines of input, one at a time. */
export interface LinePrompter {
  /** Shows `prompt` and resolves with the next line, or `null` once input has ended (Ctrl-D, Ctrl-C, end of a pipe). */
  ask(prompt: string): Promise<string | null>;
  close(): void;
}

/**
 * A prompter on readline. Lines that arrive before they are asked for (a
 * pasted block, piped input) are queued rather than lost; on a terminal,
 * readline gives line editing and history.
 */
export function linePrompter(io: CliIo): LinePrompter {
  const terminal = Boolean(io.stdin.isTTY && io.stdout.isTTY);
  const rl = createInterface({ input: io.stdin, output: io.stdout, terminal });
  const queued: string[] = [];
  let waiting: ((line: string | null) => void) | null = null;
  let ended = false;
  const deliver = (line: string | null) => {
    const resolve = waiting;
    waiting = null;
    resolve?.(line);
  };
  rl.on("line", (line) => {
    if (waiting) deliver(line);
    else queued.push(line);
  });
  rl.on("close", () => {
    ended = true;
    deliver(null);
  });
  // Ctrl-C at the prompt leaves, like Ctrl-D.
  rl.on("SIGINT", () => rl.close());
  return {
    ask(prompt) {
      const next = queued.shift();
      if (next !== undefined) return Promise.resolve(next);
      if (ended) return Promise.resolve(null);
      rl.setPrompt(prompt);
      rl.prompt();
      return new Promise((resolve) => {
        waiting = resolve;
      });
    },
    close() {
      rl.close();
    },
  };
}
