import { KiloError, toKiloError } from "../errors.js";

/** A stream the CLI writes to: `process.stdout`, `process.stderr`, or a test's collector. */
export type CliOutput = NodeJS.WritableStream & {
  /** True when a person is looking at it (spinners and colours only then). */
  isTTY?: boolean | undefined;
};

/** Where the CLI reads and writes: the process's streams by default, replaceable in tests. */
export interface CliIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean | undefined };
  stdout: CliOutput;
  stderr: CliOutput;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

/** The exit codes of the `kilo` command. */
export const EXIT = {
  /** It worked. */
  ok: 0,
  /** It failed: a KiloError code and message went to stderr. */
  failure: 1,
  /** The command line was wrong (unknown command or option, missing argument). */
  usage: 2,
} as const;

/** A command-line mistake found after parsing (an empty message, a bad argument): exits with {@link EXIT.usage}. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The process's own streams, environment and working directory. */
export function processIo(): CliIo {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
  };
}

/** Writes `text` and a newline. */
export function println(output: CliOutput, text = ""): void {
  output.write(`${text}\n`);
}

/** Prints a value as indented JSON on stdout, for `--json`. */
export function printJson(io: CliIo, value: unknown): void {
  println(io.stdout, JSON.stringify(value, null, 2));
}

/** A note for the person at the terminal, on stderr so it never mixes with output a script reads. */
export function notice(io: CliIo, text: string): void {
  println(io.stderr, `kilo: ${text}`);
}

/**
 * Reports a failure on stderr as `kilo: error CODE: message` and returns the
 * exit code. A stack trace is added only when `debug` is true
 * (`KILO_LOG_LEVEL=debug`).
 */
export function reportFailure(io: CliIo, error: unknown, debug: boolean): number {
  if (error instanceof UsageError) {
    println(io.stderr, `error: ${error.message}`);
    return EXIT.usage;
  }
  const failure = KiloError.is(error) ? error : toKiloError(error, "INTERNAL", "Unexpected failure");
  println(io.stderr, `kilo: error ${failure.code}: ${failure.message}`);
  if (debug) {
    const original = failure.cause instanceof Error ? failure.cause : failure;
    if (original.stack) println(io.stderr, original.stack);
  }
  return EXIT.failure;
}
