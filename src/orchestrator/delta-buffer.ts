/**
 * Releases streamed reply text in whole words, so a filter (secret
 * redaction) always sees a credential in one piece. A PEM block is held until
 * its END line arrives.
 */
export interface DeltaBuffer {
  push(text: string): void;
  /** Releases whatever is held (end of a model step). */
  flush(): void;
}

const PEM_START = "-----BEGIN";
const PEM_END = /-----END [A-Z ]*-----/;

export function createDeltaBuffer(
  release: (text: string) => void,
  filter: (text: string) => string,
): DeltaBuffer {
  let pending = "";
  const emit = (text: string) => {
    if (text.length === 0) return;
    const filtered = filter(text);
    if (filtered.length > 0) release(filtered);
  };
  return {
    push(text) {
      pending += text;
      let cut = Math.max(pending.lastIndexOf(" "), pending.lastIndexOf("\n"), pending.lastIndexOf("\t")) + 1;
      const pem = pending.indexOf(PEM_START);
      if (pem >= 0 && !PEM_END.test(pending.slice(pem))) cut = Math.min(cut, pem);
      if (cut > 0) {
        emit(pending.slice(0, cut));
        pending = pending.slice(cut);
      }
    },
    flush() {
      emit(pending);
      pending = "";
    },
  };
}
