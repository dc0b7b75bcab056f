import type { SoulInput } from "../domain/bot.js";
import { type CliIo, println } from "./cli-io.js";
import type { LinePrompter } from "./line-prompter.js";

/** What the wizard collected: a bot's name and its five-layer soul. */
export interface WizardResult {
  name: string;
  soul: SoulInput;
}

const splitBy = (separator: string) => (answer: string) =>
  answer
    .split(separator)
    .map((part) => part.trim())
    .filter((part) => part !== "");

/** Resolves an answer to one of `choices` (a unique prefix will do); `undefined` when it fits none. */
function choose<T extends string>(answer: string, choices: readonly T[]): T | undefined {
  const lower = answer.toLowerCase();
  const matches = choices.filter((choice) => choice.startsWith(lower));
  return choices.find((choice) => choice === lower) ?? (matches.length === 1 ? matches[0] : undefined);
}

/** Thrown inside the wizard when input ends: the wizard then resolves `null`. */
class Cancelled extends Error {}

/**
 * The `/new` wizard: walks through a bot's name and the five layers of its
 * soul (personality, values, communication style, behavioural rules,
 * decision framework). Every question but the name may be skipped with
 * Enter. Resolves `null` when the user cancels (declines at the end, or input ends).
 */
export async function soulWizard(io: CliIo, prompter: LinePrompter): Promise<WizardResult | null> {
  const ask = async (question: string): Promise<string> => {
    const answer = await prompter.ask(question);
    if (answer === null) throw new Cancelled();
    return answer.trim();
  };
  // Free text: the answer, or undefined when skipped.
  const text = async (question: string) => (await ask(`${question}: `)) || undefined;
  const list = async (question: string, separator: string) =>
    splitBy(separator)(await ask(`${question} (separate with '${separator}'): `));
  const pick = async <T extends string>(question: string, choices: readonly T[], fallback: T): Promise<T> => {
    for (;;) {
      const answer = await ask(`${question} (${choices.join(", ")}) [${fallback}]: `);
      const chosen = answer === "" ? fallback : choose(answer, choices);
      if (chosen) return chosen;
      println(io.stdout, `  Please answer one of: ${choices.join(", ")}.`);
    }
  };
  try {
    println(io.stdout, "New bot. Press Enter to skip a question.");
    let name = "";
    while (name === "") name = (await ask("Name: ")).slice(0, 100);
    println(io.stdout, "1/5 Personality");
    const personalityTraits = {
      tone: await text("  Tone, e.g. warm, direct, playful"),
      energy: await text("  Energy, e.g. calm, upbeat"),
      traits: await list("  Traits, e.g. organised, curious", ","),
    };
    println(io.stdout, "2/5 Values, most important first");
    const valuesAndPrinciples = await list("  Values", ";");
    println(io.stdout, "3/5 Communication style");
    const communicationStyle = {
      verbosity: await pick("  Verbosity", ["concise", "balanced", "detailed"], "balanced"),
      formality: await pick("  Formality", ["casual", "neutral", "formal"], "neutral"),
      formatting: await pick("  Formatting", ["plain", "markdown"], "markdown"),
    };
    println(io.stdout, "4/5 Behavioural rules");
    const behavioralRules = { always: await list("  Always", ";"), never: await list("  Never", ";") };
    println(io.stdout, "5/5 Decision framework");
    const decisionFramework = { ambiguity: await text("  When a request is ambiguous, it should") };
    if (/^n/i.test(await ask(`Create ${name}? [Y/n]: `))) return null;
    return {
      name,
      soul: {
        personalityTraits,
        valuesAndPrinciples,
        communicationStyle,
        behavioralRules,
        decisionFramework,
      },
    };
  } catch (error) {
    if (error instanceof Cancelled) return null;
    throw error;
  }
}
