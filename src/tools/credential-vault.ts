import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject, randomBytes } from "node:crypto";
import { KiloError } from "../errors.js";
import type { CredentialContext, CredentialVault } from "../ports/credential-vault.js";

/** Options of {@link aesGcmVault}. */
export interface AesGcmVaultOptions {
  /**
   * The key or keyring. A string is one key (64 hex characters, i.e. 32
   * bytes) with key id `k1`. An object maps key ids (1-32 letters, digits,
   * `_` or `-`) to keys. Default: read from the environment on first use
   * (`KILO_CREDENTIAL_KEY`, `KILO_CREDENTIAL_KEYS`).
   */
  keys?: Record<string, string> | string;
  /**
   * Id of the key new encryptions use. Default: the only key, when there is
   * one; otherwise `KILO_CREDENTIAL_ACTIVE_KEY`. Required when the keyring
   * holds more than one key.
   */
  activeKeyId?: string;
  /** Where the environment variables are read from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/** The vault {@link aesGcmVault} returns: a {@link CredentialVault} with rotation support. */
export interface AesGcmVault extends CredentialVault {
  /** True when the ciphertext is not a `v1` ciphertext under the active key. */
  needsRotation(ciphertext: string): boolean;
  /** Decrypts with the ciphertext's own key and encrypts again under the active key. */
  reencrypt(ciphertext: string, context: CredentialContext): Promise<string>;
}

const NAME = "aes-gcm";
const VERSION = "v1";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_HEX = /^[0-9a-fA-F]{64}$/;
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const DECRYPT_FAILED = "credential could not be decrypted (wrong key, wrong tool, or tampered)";
const GENERATE_HINT =
  "generate one with: node -e \"console.log(require('crypto').randomBytes(32).toString('hex'))\"";

interface Keyring {
  activeKeyId: string;
  keys: Map<string, KeyObject>;
}

interface ParsedCiphertext {
  keyId: string;
  iv: Buffer;
  tag: Buffer;
  data: Buffer;
}

/**
 * The default {@link CredentialVault}: AES-256-GCM on `node:crypto` with a
 * keyring.
 *
 * Every encryption uses a fresh random 96-bit IV and the active key; the
 * tool id is bound as additional authenticated data (`kilo-tool:<toolId>`).
 * Ciphertexts read `v1:<keyId>:<iv>:<tag>:<ciphertext>` (base64url parts) and
 * are parsed strictly: decrypting requires a 12-byte IV and the full 16-byte
 * tag (Node would otherwise accept truncated tags and other IV lengths), and
 * a ciphertext under an older key id still decrypts while that key is in the
 * keyring. Any decrypt failure is one `TOOL_FAILED` error that says nothing
 * about the keys.
 *
 * Keys come from `options.keys`, else from the environment, read on first
 * use (not when the vault is created):
 *
 * - `KILO_CREDENTIAL_KEY`: one key, 64 hex characters, key id `k1`.
 * - `KILO_CREDENTIAL_KEYS`: a keyring, `id1:hex,id2:hex`, merged with
 *   `KILO_CREDENTIAL_KEY` (as `k1`) when both are set, with
 *   `KILO_CREDENTIAL_ACTIVE_KEY` naming the key new encryptions use.
 *
 * A missing or malformed key fails with `CONFIGURATION_INVALID` naming the
 * option and the variable, never echoing the value given.
 *
 * @example
 * ```ts
 * // One key from KILO_CREDENTIAL_KEY.
 * const vault = aesGcmVault();
 *
 * // Rotating: add k2, make it active, then run kilo's rotate(); k1 can be
 * // dropped once no ciphertext needs it.
 * const rotating = aesGcmVault({ keys: { k1: oldHex, k2: newHex }, activeKeyId: "k2" });
 * rotating.needsRotation(storedUnderK1); // true
 * const fresh = await rotating.reencrypt(storedUnderK1, { toolId }); // "v1:k2:..."
 * ```
 */
export function aesGcmVault(options: AesGcmVaultOptions = {}): AesGcmVault {
  let keyring: Keyring | undefined;
  const getKeyring = (): Keyring => {
    // Resolved on first use so that a host storing no credentials needs no key; a failure is
    // not cached, so fixing the environment and retrying works.
    keyring ??= resolveKeyring(options);
    return keyring;
  };

  const encryptWith = (keyId: string, key: KeyObject, plaintext: string, context: CredentialContext) => {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(additionalData(context));
    const data = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [VERSION, keyId, iv, tag, data]
      .map((part) => (typeof part === "string" ? part : part.toString("base64url")))
      .join(":");
  };

  const decryptParsed = (ring: Keyring, ciphertext: string, context: CredentialContext): string => {
    const aad = additionalData(context);
    const parsed = parseCiphertext(ciphertext);
    const key = parsed === undefined ? undefined : ring.keys.get(parsed.keyId);
    if (parsed === undefined || key === undefined) throw decryptFailed();
    let partial: Buffer | undefined;
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, parsed.iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(aad);
      decipher.setAuthTag(parsed.tag);
      partial = decipher.update(parsed.data);
      decipher.final();
    } catch {
      // Output of update() is unauthenticated until final() succeeds; wipe it rather than leave it around.
      partial?.fill(0);
      throw decryptFailed();
    }
    const plaintext = partial.toString("utf8");
    partial.fill(0);
    return plaintext;
  };

  return {
    name: NAME,
    async encrypt(plaintext, context) {
      if (typeof plaintext !== "string") {
        throw new KiloError("VALIDATION_FAILED", "credential plaintext must be a string", { adapter: NAME });
      }
      const ring = getKeyring();
      return encryptWith(ring.activeKeyId, ring.keys.get(ring.activeKeyId)!, plaintext, context);
    },
    async decrypt(ciphertext, context) {
      return decryptParsed(getKeyring(), ciphertext, context);
    },
    needsRotation(ciphertext) {
      const ring = getKeyring();
      const parsed = parseCiphertext(ciphertext);
      return parsed === undefined || parsed.keyId !== ring.activeKeyId;
    },
    async reencrypt(ciphertext, context) {
      const ring = getKeyring();
      const plaintext = decryptParsed(ring, ciphertext, context);
      return encryptWith(ring.activeKeyId, ring.keys.get(ring.activeKeyId)!, plaintext, context);
    },
  };
}

function additionalData(context: CredentialContext): Buffer {
  const toolId = context?.toolId;
  if (typeof toolId !== "string" || toolId.length === 0) {
    throw new KiloError("VALIDATION_FAILED", "credential context needs a non-empty `toolId`", {
      adapter: NAME,
    });
  }
  // A single prefixed field is injective; more fields would need a length-prefixed encoding.
  return Buffer.from(`kilo-tool:${toolId}`, "utf8");
}

function decryptFailed(): KiloError {
  // No cause and no details: which check failed would tell an attacker about the keyring.
  return new KiloError("TOOL_FAILED", DECRYPT_FAILED, { adapter: NAME });
}

function parseCiphertext(ciphertext: unknown): ParsedCiphertext | undefined {
  if (typeof ciphertext !== "string") return undefined;
  const parts = ciphertext.split(":");
  if (parts.length !== 5) return undefined;
  const [version, keyId, ivText, tagText, dataText] = parts as [string, string, string, string, string];
  if (version !== VERSION || !KEY_ID.test(keyId)) return undefined;
  const iv = decodeBase64url(ivText);
  const tag = decodeBase64url(tagText);
  const data = decodeBase64url(dataText);
  // Node's GCM accepts any IV length and tags down to 4 bytes unless told otherwise; both are checked here.
  if (iv?.length !== IV_BYTES || tag?.length !== TAG_BYTES || data === undefined) return undefined;
  return { keyId, iv, tag, data };
}

function decodeBase64url(text: string): Buffer | undefined {
  // Buffer.from skips characters it does not know and ignores stray bits; only the canonical encoding is accepted.
  if (!BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64url");
  return bytes.toString("base64url") === text ? bytes : undefined;
}

const SETTINGS = "aesGcmVault `keys` or KILO_CREDENTIAL_KEY";

function configurationError(message: string): KiloError {
  return new KiloError("CONFIGURATION_INVALID", message, { adapter: NAME });
}

function resolveKeyring(options: AesGcmVaultOptions): Keyring {
  if (options.keys !== undefined) return keyringFromOptions(options.keys, options.activeKeyId);
  return keyringFromEnv(options.env ?? process.env, options.activeKeyId);
}

function keyringFromOptions(keys: Record<string, string> | string, activeKeyId: string | undefined): Keyring {
  if (typeof keys === "string") {
    const key = parseKey(keys, () =>
      configurationError(
        `aesGcmVault \`keys\` (like KILO_CREDENTIAL_KEY) must be 64 hex characters (32 bytes); ${GENERATE_HINT}`,
      ),
    );
    return withActive(new Map([["k1", key]]), activeKeyId, "aesGcmVault `activeKeyId`");
  }
  if (typeof keys !== "object" || keys === null) {
    throw configurationError(
      "aesGcmVault `keys` must be a 64-hex-character key or an object of key id -> 64 hex characters " +
        `(or leave it out and set KILO_CREDENTIAL_KEY); ${GENERATE_HINT}`,
    );
  }
  const ring = new Map<string, KeyObject>();
  for (const [id, hex] of Object.entries(keys)) {
    checkKeyId(id, "aesGcmVault `keys`");
    ring.set(
      id,
      parseKey(hex, () =>
        configurationError(
          `aesGcmVault \`keys\` entry "${id}" must be 64 hex characters (32 bytes), as KILO_CREDENTIAL_KEY would; ${GENERATE_HINT}`,
        ),
      ),
    );
  }
  return withActive(ring, activeKeyId, "aesGcmVault `activeKeyId`");
}

function keyringFromEnv(env: NodeJS.ProcessEnv, activeKeyId: string | undefined): Keyring {
  const single = env.KILO_CREDENTIAL_KEY?.trim() || undefined;
  const list = env.KILO_CREDENTIAL_KEYS?.trim() || undefined;
  if (single === undefined && list === undefined) {
    throw configurationError(
      `No credential key configured: pass aesGcmVault({ keys }) or set KILO_CREDENTIAL_KEY to 64 hex characters (32 bytes); ${GENERATE_HINT}`,
    );
  }
  const ring = new Map<string, KeyObject>();
  if (single !== undefined) {
    ring.set(
      "k1",
      parseKey(single, () =>
        configurationError(
          `KILO_CREDENTIAL_KEY must be 64 hex characters (32 bytes) (or pass aesGcmVault({ keys })); ${GENERATE_HINT}`,
        ),
      ),
    );
  }
  if (list !== undefined) {
    for (const entry of list.split(",")) {
      const separator = entry.indexOf(":");
      const id = separator < 0 ? "" : entry.slice(0, separator).trim();
      const hex = separator < 0 ? "" : entry.slice(separator + 1).trim();
      checkKeyId(id, "KILO_CREDENTIAL_KEYS (`id1:hex,id2:hex`)");
      const key = parseKey(hex, () =>
        configurationError(
          `KILO_CREDENTIAL_KEYS entry "${id}" must be 64 hex characters (32 bytes) after its id (or pass aesGcmVault({ keys })); ${GENERATE_HINT}`,
        ),
      );
      const existing = ring.get(id);
      if (existing !== undefined) {
        // KILO_CREDENTIAL_KEY is k1: agreeing is harmless, disagreeing would make k1 ciphertexts undecryptable.
        if (!existing.equals(key)) {
          throw configurationError(
            `KILO_CREDENTIAL_KEYS gives key id "${id}" twice (KILO_CREDENTIAL_KEY counts as "k1") with different keys`,
          );
        }
        continue;
      }
      ring.set(id, key);
    }
  }
  const active = activeKeyId ?? (env.KILO_CREDENTIAL_ACTIVE_KEY?.trim() || undefined);
  return withActive(ring, active, "KILO_CREDENTIAL_ACTIVE_KEY (or aesGcmVault `activeKeyId`)");
}

function checkKeyId(id: string, setting: string): void {
  // The id is not echoed: a malformed one may be a key pasted in the wrong place.
  if (!KEY_ID.test(id)) {
    throw configurationError(
      `${setting} has a malformed key id: ids are 1-32 letters, digits, "_" or "-" (the key itself goes after the id)`,
    );
  }
}

function parseKey(hex: unknown, error: () => KiloError): KeyObject {
  if (typeof hex !== "string" || !KEY_HEX.test(hex)) throw error();
  const bytes = Buffer.from(hex, "hex");
  const key = createSecretKey(bytes);
  bytes.fill(0);
  return key;
}

function withActive(keys: Map<string, KeyObject>, activeKeyId: string | undefined, setting: string): Keyring {
  if (keys.size === 0) {
    throw configurationError(
      `${SETTINGS} must hold at least one key of 64 hex characters (32 bytes); ${GENERATE_HINT}`,
    );
  }
  if (activeKeyId === undefined) {
    if (keys.size > 1) {
      throw configurationError(`${setting} is required when the keyring holds more than one key`);
    }
    return { activeKeyId: keys.keys().next().value!, keys };
  }
  // Not echoed for the same reason as a malformed id.
  if (!keys.has(activeKeyId)) throw configurationError(`${setting} names no key in the keyring`);
  return { activeKeyId, keys };
}
