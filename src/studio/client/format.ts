// Numbers, money and times as the studio shows them.

const integer = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });

/** `1,234`. */
export const count = (value: number) => integer.format(value);

/** US dollars with enough digits to show a fraction of a cent: `$0.0042`, `$12.50`. */
export function usd(value: number): string {
  if (value === 0) return "$0.00";
  const digits = value >= 1 ? 2 : value >= 0.01 ? 4 : 6;
  return `$${value.toFixed(digits)}`;
}

/** `2026-11-21 10:00:03` in the browser's time zone. */
export function when(iso: string | null): string {
  if (!iso) return "–";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** Milliseconds between two ISO times, as `1.2 s` or `340 ms`; `–` while unfinished. */
export function took(from: string | null, to: string | null): string {
  if (!from || !to) return "–";
  return duration(new Date(to).getTime() - new Date(from).getTime());
}

/** `1.2 s` or `340 ms`. */
export function duration(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** `87%`. */
export const percent = (share: number) => `${Math.round(share * 100)}%`;

/** How the matcher chose: the words the studio uses for a match pass. */
export function matchPass(pass: string | null): string {
  switch (pass) {
    case "fast":
      return "fast path";
    case "llm":
      return "LLM classifier";
    case "none":
      return "no skill matched";
    default:
      return "no matcher ran";
  }
}

/** JSON for people: indented, and cut short when long. */
export function pretty(value: unknown, max = 2000): string {
  const text = JSON.stringify(value, null, 2) ?? String(value);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
