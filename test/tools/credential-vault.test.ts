import * as crypto from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { KiloError } from "../../src/errors.js";
import { aesGcmVault } from "../../src/tools/credential-vault.js";

// Delegates to the real module; lets a test see whether the vault reached Node's decipher at all.
vi.mock("node:crypto", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:crypto")>();
  return { ...actual, createDecipheriv: vi.fn(actual.createDecipheriv) };
});

const K1 = "1f".repeat(32);
const K2 = "a7".repeat(16) + "3c".repeat(16);
const SECRET = "sk-live-canary-7f3a9c";
const TOOL = { toolId: "tool_weather" };
const DECRYPT_FAILED = "credential could not be decrypted (wrong key, wrong tool, or tampered)";

/** Every error message the tests saw, checked for leaks at the end. */
const seenMessages: string[] = [];

async function failure(promise: Promise<unknown> | (() => unknown)): Promise<KiloError> {
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    if (!KiloError.is(error)) throw error;
    seenMessages.push(
      error.message,
      JSON.stringify(error.toJSON()),
      String(error.details),
      String(error.cause),
    );
    return error;
  }
  throw new Error("expected a KiloError");
}

async function expectDecryptFailure(promise: Promise<unknown>): Promise<void> {
  const error = await failure(promise);
  expect(error.code).toBe("TOOL_FAILED");
  expect(error.message).toBe(DECRYPT_FAILED);
  expect(error.cause).toBeUndefined();
  expect(error.details).toBeUndefined();
}

interface Parts {
  version: string;
  keyId: string;
  iv: Buffer;
  tag: Buffer;
  data: Buffer;
}

function parts(ciphertext: string): Parts {
  const [version, keyId, iv, tag, data] = ciphertext.split(":") as [string, string, string, string, string];
  return {
    version,
    keyId,
    iv: Buffer.from(iv, "base64url"),
    tag: Buffer.from(tag, "base64url"),
    data: Buffer.from(data, "base64url"),
  };
}

function assemble(p: Parts): string {
  return [p.version, p.keyId, p.iv, p.tag, p.data]
    .map((part) => (typeof part === "string" ? part : part.toString("base64url")))
    .join(":");
}

function flip(bytes: Buffer, index = 0): Buffer {
  const copy = Buffer.from(bytes);
  copy[index] = copy[index]! ^ 0x01;
  return copy;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** The same base64url character with its lowest bit flipped: a spare bit in a 16-byte value's last character. */
function flipSpareBit(character: string): string {
  return ALPHABET[ALPHABET.indexOf(character) ^ 1]!;
}

afterEach(() => {
  vi.mocked(crypto.createDecipheriv).mockClear();
});

describe("aesGcmVault", () => {
  it("round-trips a credential, including empty and non-ASCII ones", async () => {
    const vault = aesGcmVault({ keys: K1 });
    expect(vault.name).toBe("aes-gcm");
    for (const plaintext of [SECRET, "", "pässwörd 🔑", "x".repeat(10_000)]) {
      const ciphertext = await vault.encrypt(plaintext, TOOL);
      expect(ciphertext).toMatch(/^v1:k1:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]{22}:[A-Za-z0-9_-]*$/);
      expect(ciphertext).not.toContain(plaintext || "\0");
      await expect(vault.decrypt(ciphertext, TOOL)).resolves.toBe(plaintext);
    }
  });

  it("uses a fresh 96-bit IV for every encryption", async () => {
    const vault = aesGcmVault({ keys: K1 });
    const ciphertexts = await Promise.all(Array.from({ length: 1000 }, () => vault.encrypt(SECRET, TOOL)));
    const ivs = ciphertexts.map((c) => parts(c).iv);
    for (const iv of ivs) expect(iv).toHaveLength(12);
    expect(new Set(ivs.map((iv) => iv.toString("hex"))).size).toBe(1000);
    expect(new Set(ciphertexts).size).toBe(1000);
    expect(new Set(ciphertexts.map((c) => parts(c).data.toString("hex"))).size).toBe(1000);
  });

  describe("tampering", () => {
    const vault = aesGcmVault({ keys: K1 });

    it("refuses a changed IV", async () => {
      const p = parts(await vault.encrypt(SECRET, TOOL));
      await expectDecryptFailure(vault.decrypt(assemble({ ...p, iv: flip(p.iv, 11) }), TOOL));
    });

    it("refuses a changed tag", async () => {
      const p = parts(await vault.encrypt(SECRET, TOOL));
      await expectDecryptFailure(vault.decrypt(assemble({ ...p, tag: flip(p.tag, 15) }), TOOL));
    });

    it("refuses a changed ciphertext", async () => {
      const p = parts(await vault.encrypt(SECRET, TOOL));
      await expectDecryptFailure(vault.decrypt(assemble({ ...p, data: flip(p.data, 3) }), TOOL));
      await expectDecryptFailure(vault.decrypt(assemble({ ...p, data: p.data.subarray(1) }), TOOL));
      await expectDecryptFailure(
        vault.decrypt(assemble({ ...p, data: Buffer.concat([p.data, Buffer.of(0)]) }), TOOL),
      );
    });

    it("refuses a ciphertext moved to another tool (AAD)", async () => {
      const ciphertext = await vault.encrypt(SECRET, TOOL);
      await expectDecryptFailure(vault.decrypt(ciphertext, { toolId: "tool_other" }));
      await expectDecryptFailure(vault.decrypt(ciphertext, { toolId: `${TOOL.toolId} ` }));
      await expect(vault.decrypt(ciphertext, TOOL)).resolves.toBe(SECRET);
    });

    it("refuses a truncated tag that Node alone would accept", async () => {
      const ciphertext = await vault.encrypt(SECRET, TOOL);
      const p = parts(ciphertext);
      for (const length of [4, 8, 12]) {
        const shortTag = p.tag.subarray(0, length);

        // Node's GCM, not told the tag length, authenticates a truncated tag and hands out the plaintext.
        const lenient = crypto.createDecipheriv("aes-256-gcm", Buffer.from(K1, "hex"), p.iv);
        lenient.setAAD(Buffer.from(`kilo-tool:${TOOL.toolId}`));
        lenient.setAuthTag(shortTag);
        expect(Buffer.concat([lenient.update(p.data), lenient.final()]).toString()).toBe(SECRET);
        vi.mocked(crypto.createDecipheriv).mockClear();

        // The vault refuses it in its own length check, before a decipher is ever made.
        await expectDecryptFailure(vault.decrypt(assemble({ ...p, tag: shortTag }), TOOL));
        expect(crypto.createDecipheriv).not.toHaveBeenCalled();
      }
      // The same check lets the full tag through to Node.
      await expect(vault.decrypt(ciphertext, TOOL)).resolves.toBe(SECRET);
      expect(crypto.createDecipheriv).toHaveBeenCalledTimes(1);
      expect(vi.mocked(crypto.createDecipheriv).mock.calls[0]![3]).toEqual({ authTagLength: 16 });
    });

    it("refuses an IV that is not 96 bits, even one Node would decrypt with", async () => {
      const key = Buffer.from(K1, "hex");
      const iv = crypto.randomBytes(16);
      const cipher = crypto.createCipheriv("aes-256-gcm", key, iv, { authTagLength: 16 });
      cipher.setAAD(Buffer.from(`kilo-tool:${TOOL.toolId}`));
      const data = Buffer.concat([cipher.update(SECRET), cipher.final()]);
      const forged = assemble({ version: "v1", keyId: "k1", iv, tag: cipher.getAuthTag(), data });

      const lenient = crypto.createDecipheriv("aes-256-gcm", key, iv, { authTagLength: 16 });
      lenient.setAAD(Buffer.from(`kilo-tool:${TOOL.toolId}`));
      lenient.setAuthTag(cipher.getAuthTag());
      expect(Buffer.concat([lenient.update(data), lenient.final()]).toString()).toBe(SECRET);
      vi.mocked(crypto.createDecipheriv).mockClear();

      await expectDecryptFailure(vault.decrypt(forged, TOOL));
      expect(crypto.createDecipheriv).not.toHaveBeenCalled();
      const p = parts(await vault.encrypt(SECRET, TOOL));
      await expectDecryptFailure(vault.decrypt(assemble({ ...p, iv: p.iv.subarray(0, 8) }), TOOL));
    });

    it("parses the format strictly", async () => {
      const ciphertext = await vault.encrypt(SECRET, TOOL);
      const [, keyId, iv, tag, data] = ciphertext.split(":") as [string, string, string, string, string];
      const malformed = [
        "",
        "garbage",
        `v2:${keyId}:${iv}:${tag}:${data}`,
        `V1:${keyId}:${iv}:${tag}:${data}`,
        `${keyId}:${iv}:${tag}:${data}`,
        `${ciphertext}:`,
        `v1:${keyId}:${iv}:${tag}`,
        `v1:${keyId}:${iv}=:${tag}:${data}`,
        `v1:${keyId}:${iv.replace(/^./, "+")}:${tag}:${data}`,
        `v1:${keyId}:${iv} :${tag}:${data}`,
        `v1:${keyId}:${iv}:${tag.slice(0, -1)}!:${data}`,
        // The tag's last character carries 2 spare bits; a non-canonical encoding of the same bytes is refused.
        `v1:${keyId}:${iv}:${tag.slice(0, -1)}${flipSpareBit(tag.at(-1)!)}:${data}`,
        ` ${ciphertext}`,
        `${ciphertext}\n`,
      ];
      for (const text of malformed) await expectDecryptFailure(vault.decrypt(text, TOOL));
      await expect(vault.decrypt(ciphertext, TOOL)).resolves.toBe(SECRET);
    });

    it("refuses an unknown key id without naming it", async () => {
      const p = parts(await vault.encrypt(SECRET, TOOL));
      await expectDecryptFailure(vault.decrypt(assemble({ ...p, keyId: "k9" }), TOOL));
      const other = aesGcmVault({ keys: { k9: K2 } });
      await expectDecryptFailure(other.decrypt(assemble(p), TOOL));
      const error = await failure(other.decrypt(assemble(p), TOOL));
      expect(error.message).not.toContain("k9");
      expect(error.message).not.toContain("k1");
    });

    it("refuses a ciphertext relabelled with another key id of the same keyring", async () => {
      const ring = aesGcmVault({ keys: { k1: K1, k2: K2 }, activeKeyId: "k1" });
      const p = parts(await ring.encrypt(SECRET, TOOL));
      await expectDecryptFailure(ring.decrypt(assemble({ ...p, keyId: "k2" }), TOOL));
    });

    it("requires a non-empty tool id", async () => {
      const ciphertext = await vault.encrypt(SECRET, TOOL);
      expect((await failure(vault.encrypt(SECRET, { toolId: "" }))).code).toBe("VALIDATION_FAILED");
      expect((await failure(vault.decrypt(ciphertext, { toolId: "" }))).code).toBe("VALIDATION_FAILED");
    });
  });

  describe("keyring", () => {
    it("keeps old ciphertexts readable after the active key changes, and rotates them", async () => {
      const before = aesGcmVault({ keys: { k1: K1 } });
      const old = await before.encrypt(SECRET, TOOL);
      expect(parts(old).keyId).toBe("k1");
      expect(before.needsRotation(old)).toBe(false);

      const after = aesGcmVault({ keys: { k1: K1, k2: K2 }, activeKeyId: "k2" });
      await expect(after.decrypt(old, TOOL)).resolves.toBe(SECRET);
      expect(after.needsRotation(old)).toBe(true);

      const rotated = await after.reencrypt(old, TOOL);
      expect(parts(rotated).keyId).toBe("k2");
      expect(after.needsRotation(rotated)).toBe(false);
      await expect(after.decrypt(rotated, TOOL)).resolves.toBe(SECRET);
      expect(parts(await after.encrypt(SECRET, TOOL)).keyId).toBe("k2");

      // Once rotated, k1 can leave the keyring.
      const k2Only = aesGcmVault({ keys: { k2: K2 } });
      await expect(k2Only.decrypt(rotated, TOOL)).resolves.toBe(SECRET);
      await expectDecryptFailure(k2Only.decrypt(old, TOOL));
    });

    it("reencrypt keeps the tool binding and fails as decrypt does", async () => {
      const vault = aesGcmVault({ keys: { k1: K1, k2: K2 }, activeKeyId: "k2" });
      const old = await aesGcmVault({ keys: K1 }).encrypt(SECRET, TOOL);
      await expectDecryptFailure(vault.reencrypt(old, { toolId: "tool_other" }));
      const rotated = await vault.reencrypt(old, TOOL);
      await expectDecryptFailure(vault.decrypt(rotated, { toolId: "tool_other" }));
      const p = parts(old);
      await expectDecryptFailure(vault.reencrypt(assemble({ ...p, tag: flip(p.tag) }), TOOL));
    });

    it("counts an unparseable ciphertext as needing rotation", () => {
      const vault = aesGcmVault({ keys: K1 });
      expect(vault.needsRotation("garbage")).toBe(true);
      expect(vault.needsRotation("v2:k1:a:b:c")).toBe(true);
    });

    it("needs activeKeyId when there is more than one key", async () => {
      const error = await failure(aesGcmVault({ keys: { k1: K1, k2: K2 } }).encrypt(SECRET, TOOL));
      expect(error.code).toBe("CONFIGURATION_INVALID");
      expect(error.message).toContain("activeKeyId");
      const unknown = await failure(
        aesGcmVault({ keys: { k1: K1 }, activeKeyId: "k7" }).encrypt(SECRET, TOOL),
      );
      expect(unknown.code).toBe("CONFIGURATION_INVALID");
      expect(unknown.message).toContain("activeKeyId");
      expect(unknown.message).not.toContain("k7");
    });
  });

  describe("key configuration", () => {
    const BAD_VALUES = [
      "1f".repeat(31), // 31 bytes
      "1f".repeat(33), // 33 bytes
      `${"1f".repeat(31)}zz`, // not hex
      Buffer.from(K1, "hex").toString("base64"), // right bytes, wrong encoding
    ];

    it("is read lazily, on first use", async () => {
      const env: NodeJS.ProcessEnv = {};
      const vault = aesGcmVault({ env });
      expect(vault.name).toBe("aes-gcm");
      const missing = await failure(vault.encrypt(SECRET, TOOL));
      expect(missing.code).toBe("CONFIGURATION_INVALID");
      env.KILO_CREDENTIAL_KEY = K1;
      const ciphertext = await vault.encrypt(SECRET, TOOL);
      await expect(aesGcmVault({ keys: K1 }).decrypt(ciphertext, TOOL)).resolves.toBe(SECRET);
    });

    it("names the option and the variable when no key is configured", async () => {
      const error = await failure(aesGcmVault({ env: {} }).decrypt("v1:k1:a:b:c", TOOL));
      expect(error.code).toBe("CONFIGURATION_INVALID");
      expect(error.message).toContain("KILO_CREDENTIAL_KEY");
      expect(error.message).toContain("keys");
      expect(error.message).toContain("64 hex characters");
      expect(error.message).toContain("randomBytes(32)");
      expect(() => aesGcmVault({ env: {} }).needsRotation("x")).toThrow(/KILO_CREDENTIAL_KEY/);
    });

    it.each(BAD_VALUES)(
      "refuses a malformed key from options or env without echoing it (%#)",
      async (bad) => {
        const fromOption = await failure(aesGcmVault({ keys: bad }).encrypt(SECRET, TOOL));
        const fromRing = await failure(
          aesGcmVault({ keys: { k1: K1, k2: bad }, activeKeyId: "k1" }).encrypt(SECRET, TOOL),
        );
        const fromEnv = await failure(
          aesGcmVault({ env: { KILO_CREDENTIAL_KEY: bad } }).encrypt(SECRET, TOOL),
        );
        const fromEnvRing = await failure(
          aesGcmVault({
            env: { KILO_CREDENTIAL_KEYS: `k1:${K1},k2:${bad}`, KILO_CREDENTIAL_ACTIVE_KEY: "k1" },
          }).encrypt(SECRET, TOOL),
        );
        for (const error of [fromOption, fromRing, fromEnv, fromEnvRing]) {
          expect(error.code).toBe("CONFIGURATION_INVALID");
          expect(error.message).not.toContain(bad);
          expect(error.message).not.toContain(bad.slice(0, 16));
          expect(error.message).not.toContain(K1);
          expect(error.message).toContain("64 hex characters");
          expect(error.message).toContain("KILO_CREDENTIAL_KEY");
          expect(error.cause).toBeUndefined();
        }
        expect(fromOption.message).toContain("`keys`");
        expect(fromRing.message).toContain('"k2"');
        expect(fromEnv.message).toMatch(/^KILO_CREDENTIAL_KEY must be 64 hex characters/);
        expect(fromEnvRing.message).toContain("KILO_CREDENTIAL_KEYS");
      },
    );

    it("does not echo a key pasted where a key id belongs", async () => {
      const swapped = await failure(aesGcmVault({ keys: { [K1]: "k1" } }).encrypt(SECRET, TOOL));
      const swappedEnv = await failure(
        aesGcmVault({ env: { KILO_CREDENTIAL_KEYS: `${K1}:k1` } }).encrypt(SECRET, TOOL),
      );
      const noSeparator = await failure(
        aesGcmVault({ env: { KILO_CREDENTIAL_KEYS: K1 } }).encrypt(SECRET, TOOL),
      );
      const activeIsKey = await failure(
        aesGcmVault({ env: { KILO_CREDENTIAL_KEYS: `k1:${K1}`, KILO_CREDENTIAL_ACTIVE_KEY: K2 } }).encrypt(
          SECRET,
          TOOL,
        ),
      );
      for (const error of [swapped, swappedEnv, noSeparator, activeIsKey]) {
        expect(error.code).toBe("CONFIGURATION_INVALID");
        expect(error.message).not.toContain(K1);
        expect(error.message).not.toContain(K2);
        expect(error.message).not.toContain(K1.slice(0, 16));
        expect(error.message).not.toContain(K2.slice(0, 16));
      }
      expect(activeIsKey.message).toContain("KILO_CREDENTIAL_ACTIVE_KEY");
    });

    it("refuses a keys option that is neither a string nor an object", async () => {
      const error = await failure(aesGcmVault({ keys: 42 as unknown as string }).encrypt(SECRET, TOOL));
      expect(error.code).toBe("CONFIGURATION_INVALID");
      expect((await failure(aesGcmVault({ keys: {} }).encrypt(SECRET, TOOL))).code).toBe(
        "CONFIGURATION_INVALID",
      );
    });

    it("prefers the keys option over the environment", async () => {
      const vault = aesGcmVault({ keys: K2, env: { KILO_CREDENTIAL_KEY: K1 } });
      const ciphertext = await vault.encrypt(SECRET, TOOL);
      await expect(aesGcmVault({ keys: K2 }).decrypt(ciphertext, TOOL)).resolves.toBe(SECRET);
      await expectDecryptFailure(aesGcmVault({ keys: K1 }).decrypt(ciphertext, TOOL));
    });

    it("reads KILO_CREDENTIAL_KEY as key k1, trimming surrounding whitespace", async () => {
      const vault = aesGcmVault({ env: { KILO_CREDENTIAL_KEY: ` ${K1.toUpperCase()}\n` } });
      const ciphertext = await vault.encrypt(SECRET, TOOL);
      expect(parts(ciphertext).keyId).toBe("k1");
      await expect(aesGcmVault({ keys: K1 }).decrypt(ciphertext, TOOL)).resolves.toBe(SECRET);
    });

    it("reads a keyring from KILO_CREDENTIAL_KEYS and KILO_CREDENTIAL_ACTIVE_KEY", async () => {
      const old = await aesGcmVault({ keys: K1 }).encrypt(SECRET, TOOL);
      const vault = aesGcmVault({
        env: { KILO_CREDENTIAL_KEYS: `k1:${K1}, k2:${K2}`, KILO_CREDENTIAL_ACTIVE_KEY: "k2" },
      });
      await expect(vault.decrypt(old, TOOL)).resolves.toBe(SECRET);
      expect(vault.needsRotation(old)).toBe(true);
      expect(parts(await vault.encrypt(SECRET, TOOL)).keyId).toBe("k2");

      const missingActive = await failure(
        aesGcmVault({ env: { KILO_CREDENTIAL_KEYS: `k1:${K1},k2:${K2}` } }).encrypt(SECRET, TOOL),
      );
      expect(missingActive.code).toBe("CONFIGURATION_INVALID");
      expect(missingActive.message).toContain("KILO_CREDENTIAL_ACTIVE_KEY");

      const activeFromOption = aesGcmVault({
        activeKeyId: "k1",
        env: { KILO_CREDENTIAL_KEYS: `k1:${K1},k2:${K2}`, KILO_CREDENTIAL_ACTIVE_KEY: "k2" },
      });
      expect(parts(await activeFromOption.encrypt(SECRET, TOOL)).keyId).toBe("k1");
    });

    it("merges KILO_CREDENTIAL_KEY (as k1) with KILO_CREDENTIAL_KEYS", async () => {
      const old = await aesGcmVault({ keys: K1 }).encrypt(SECRET, TOOL);
      const vault = aesGcmVault({
        env: { KILO_CREDENTIAL_KEY: K1, KILO_CREDENTIAL_KEYS: `k2:${K2}`, KILO_CREDENTIAL_ACTIVE_KEY: "k2" },
      });
      await expect(vault.decrypt(old, TOOL)).resolves.toBe(SECRET);
      expect(parts(await vault.reencrypt(old, TOOL)).keyId).toBe("k2");

      const agreeing = aesGcmVault({ env: { KILO_CREDENTIAL_KEY: K1, KILO_CREDENTIAL_KEYS: `k1:${K1}` } });
      await expect(agreeing.decrypt(old, TOOL)).resolves.toBe(SECRET);

      const clash = await failure(
        aesGcmVault({
          env: {
            KILO_CREDENTIAL_KEY: K1,
            KILO_CREDENTIAL_KEYS: `k1:${K2}`,
            KILO_CREDENTIAL_ACTIVE_KEY: "k1",
          },
        }).encrypt(SECRET, TOOL),
      );
      expect(clash.code).toBe("CONFIGURATION_INVALID");
      expect(clash.message).toContain("k1");
      expect(clash.message).not.toContain(K1);
      expect(clash.message).not.toContain(K2);
    });

    it("reads process.env when no env is given", async () => {
      vi.stubEnv("KILO_CREDENTIAL_KEY", K2);
      vi.stubEnv("KILO_CREDENTIAL_KEYS", "");
      try {
        const ciphertext = await aesGcmVault().encrypt(SECRET, TOOL);
        await expect(aesGcmVault({ keys: K2 }).decrypt(ciphertext, TOOL)).resolves.toBe(SECRET);
      } finally {
        vi.unstubAllEnvs();
      }
    });
  });

  it("never puts plaintext, key material or ciphertext into an error", async () => {
    // Provoke the remaining failure kinds so every message is collected here.
    const vault = aesGcmVault({ keys: K1 });
    const ciphertext = await vault.encrypt(SECRET, TOOL);
    await failure(vault.decrypt(ciphertext, { toolId: "tool_other" }));
    await failure(vault.decrypt(`${ciphertext}x`, TOOL));
    await failure(aesGcmVault({ keys: K2 }).decrypt(ciphertext, TOOL));

    const p = parts(ciphertext);
    const forbidden = [
      SECRET,
      Buffer.from(SECRET).toString("base64"),
      Buffer.from(SECRET).toString("hex"),
      encodeURIComponent(SECRET),
      K1,
      K1.toUpperCase(),
      K1.slice(0, 16),
      K2,
      K2.slice(0, 16),
      Buffer.from(K1, "hex").toString("base64"),
      ciphertext,
      p.iv.toString("base64url"),
      p.tag.toString("base64url"),
      p.data.toString("base64url"),
    ];
    expect(seenMessages.length).toBeGreaterThan(40);
    for (const message of seenMessages) {
      for (const value of forbidden) expect(message).not.toContain(value);
    }
  });
});
