import type { SkillVolumeCommitOrigin } from "../../../src/ports/skill-volume.js";

/** What a commit kilo makes does; written as the `Kilo-Change` trailer. */
export type KiloChange = "add" | "update" | "remove" | "rollback" | "pickup";

const TRAILER = "Kilo-Change";
const CHANGES: readonly KiloChange[] = ["add", "update", "remove", "rollback", "pickup"];
const VERBS: Record<Exclude<KiloChange, "pickup">, string> = {
  add: "Add",
  update: "Update",
  remove: "Remove",
  rollback: "Roll back",
};
const SUBJECT_REASON_CHARS = 72;

/** Extras of {@link kiloCommitMessage}. */
export interface KiloCommitMessageOptions {
  /** The version a rollback restores, shown in the subject (`Roll back pdf-tools to 1a2b3c4`). */
  target?: string;
  /** The reason whose first line the subject shows. Default: `reason`. */
  subjectReason?: string | null;
}

/**
 * The message of a commit kilo makes for a skill: a subject naming the
 * change and the skill (with the reason's first line, shortened, so
 * `git log --oneline` shows why), the whole reason as the body, and a
 * `Kilo-Change` trailer by which kilo knows its own commits.
 */
export function kiloCommitMessage(
  change: Exclude<KiloChange, "pickup">,
  name: string,
  reason: string | null,
  options: KiloCommitMessageOptions = {},
): string {
  const { target } = options;
  const shown = options.subjectReason === undefined ? reason : options.subjectReason;
  const firstLine = shown?.trim().split("\n")[0]?.trim() ?? "";
  const short =
    firstLine.length > SUBJECT_REASON_CHARS ? `${firstLine.slice(0, SUBJECT_REASON_CHARS - 1)}…` : firstLine;
  const subject = `${VERBS[change]} ${name}${target === undefined ? "" : ` to ${target}`}${short ? `: ${short}` : ""}`;
  const body = reason?.trim() ? `\n\n${reason.trim()}` : "";
  return `${subject}${body}\n\n${TRAILER}: ${change}\n`;
}

/** How a file changed in the working tree, for a pick-up commit's message. */
export interface PickedUpFile {
  /** The file's path in the repository. */
  path: string;
  /** What happened to it. */
  status: "added" | "modified" | "deleted";
}

const LISTED_FILES = 20;

/** The message of the commit kilo makes of edits it found in the working tree. */
export function pickUpMessage(files: readonly PickedUpFile[]): string {
  const listed = files.slice(0, LISTED_FILES).map((file) => `${file.path} (${file.status})`);
  const more = files.length > LISTED_FILES ? `, and ${files.length - LISTED_FILES} more` : "";
  return (
    "Pick up changes made outside kilo\n\n" +
    `Changed outside kilo and picked up from the working tree: ${listed.join(", ")}${more}.\n\n` +
    `${TRAILER}: pickup\n`
  );
}

/** A commit message read back: where it came from and the reason it gives. */
export interface ReadMessage {
  /** Where the commit came from. */
  origin: SkillVolumeCommitOrigin;
  /** The change kilo recorded, or `null` for a commit made outside kilo. */
  change: KiloChange | null;
  /** The reason: kilo's body, or the whole message of a commit made outside kilo. */
  reason: string | null;
}

/** Reads a commit message: kilo's own (by its trailer) or someone else's. */
export function readCommitMessage(message: string): ReadMessage {
  const text = message.replace(/\s+$/, "");
  const lastBreak = text.lastIndexOf("\n\n");
  const trailers = lastBreak < 0 ? "" : text.slice(lastBreak + 2);
  const match = new RegExp(`^${TRAILER}: *([a-z]+) *$`, "m").exec(trailers);
  const change =
    match && (CHANGES as readonly string[]).includes(match[1]!) ? (match[1] as KiloChange) : null;
  if (change === null) {
    const reason = message.trim();
    return { origin: "outside", change: null, reason: reason.length > 0 ? reason : null };
  }
  const head = text.slice(0, lastBreak);
  const bodyStart = head.indexOf("\n\n");
  const body = bodyStart < 0 ? "" : head.slice(bodyStart + 2).trim();
  return {
    origin: change === "pickup" ? "picked-up" : "kilo",
    change,
    reason: body.length > 0 ? body : null,
  };
}
