import { KiloError } from "../errors.js";
import type { CliSettings } from "./cli-config.js";
import { type CliIo, notice } from "./cli-io.js";

/** A live provider the CLI can use. */
export type LiveProviderName = "anthropic" | "openai";

/** The environment variables of each live provider: its API key and its base URL. */
export const PROVIDER_VARIABLES: Readonly<Record<LiveProviderName, { apiKey: string; baseUrl: string }>> = {
  anthropic: { apiKey: "ANTHROPIC_API_KEY", baseUrl: "ANTHROPIC_BASE_URL" },
  openai: { apiKey: "OPENAI_API_KEY", baseUrl: "OPENAI_BASE_URL" },
};

/** Which providers `settings.provider` and the API keys in `env` select, in fallback order; `offline` when none. */
export function selectProviders(
  settings: Pick<CliSettings, "provider">,
  env: CliIo["env"],
): Array<LiveProviderName | "offline"> {
  const has = (name: LiveProviderName) => (env[PROVIDER_VARIABLES[name].apiKey]?.trim() ?? "") !== "";
  switch (settings.provider) {
    case "offline":
      return ["offline"];
    case "anthropic":
    case "openai": {
      const key = PROVIDER_VARIABLES[settings.provider].apiKey;
      if (!has(settings.provider)) {
        throw new KiloError(
          "CONFIGURATION_INVALID",
          `KILO_PROVIDER=${settings.provider} needs ${key} to be set`,
        );
      }
      return [settings.provider];
    }
    case "auto": {
      const live = (["anthropic", "openai"] as const).filter(has);
      return live.length > 0 ? live : ["offline"];
    }
  }
}

/** Tells the person at the terminal (stderr) when the CLI runs on the offline model. */
export function announceProviders(settings: CliSettings, io: CliIo): void {
  const selected = selectProviders(settings, io.env);
  if (selected[0] !== "offline") return;
  notice(
    io,
    settings.provider === "offline"
      ? "using the offline model (KILO_PROVIDER=offline): replies are canned, not from a real model"
      : "no ANTHROPIC_API_KEY or OPENAI_API_KEY set: using the offline model (replies are canned, not from a real model)",
  );
}
