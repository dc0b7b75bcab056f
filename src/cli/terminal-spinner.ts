import type { CliOutput } from "./cli-io.js";

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const FRAME_MS = 80;

/** A one-line activity indicator. */
export interface Spinner {
  /** Shows the first frame with `label` at once, then animates; a running spinner just changes its label. */
  start(label: string): void;
  /** Clears the line. Safe to call when stopped. */
  stop(): void;
}

/**
 * A spinner drawn in place on a terminal (`\r` and erase-line). On anything
 * that is not a terminal it draws nothing, so piped output stays clean.
 */
export function terminalSpinner(output: CliOutput): Spinner {
  if (!output.isTTY) return { start() {}, stop() {} };
  let timer: NodeJS.Timeout | null = null;
  let frame = 0;
  let label = "";
  const draw = () => {
    output.write(`\r\x1b[2K${FRAMES[frame % FRAMES.length]} ${label}`);
    frame += 1;
  };
  return {
    start(text) {
      label = text;
      if (timer) return;
      frame = 0;
      draw();
      timer = setInterval(draw, FRAME_MS);
    },
    stop() {
      if (!timer) return;
      clearInterval(timer);
      timer = null;
      output.write("\r\x1b[2K");
    },
  };
}
