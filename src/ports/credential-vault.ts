/**
 * What a credential is bound to. The vault authenticates it together with
 * the ciphertext (as additional authenticated data), so a ciphertext copied
 * from one tool's row to another's fails to decrypt instead of handing one
 * tool's secret to another tool's endpoints.
 */
export interface CredentialContext {
  /** Id of the registered tool the credential belongs to. Non-empty. */
  toolId: string;
}

/**
 * The CredentialVault port: encrypts the secrets of registered tools (API
 * keys, bearer tokens, basic-auth passwords) before they are stored, and
 * decrypts them for the tool executor at call time. It is the only place
 * kilo turns a stored credential back into plaintext.
 *
 * kilo ships `aesGcmVault()` (AES-256-GCM with a keyring, keys from options
 * or `KILO_CREDENTIAL_KEY`), used when `createKilo({ vault })` is not given.
 * A host that keeps its keys in a KMS (AWS KMS, GCP KMS, Vault transit, an
 * HSM) implements this interface instead and passes it as `vault`.
 *
 * Semantics a vault must keep:
 *
 * - `encrypt(plaintext, context)` returns an opaque ciphertext string. It
 *   must be printable ASCII without whitespace or newlines (the core stores
 *   it in a text column and never parses it) and must start with a version
 *   tag of the vault's own choosing (`aesGcmVault` writes `v1:...`), so the
 *   vault can tell its formats apart as they evolve. Encryption must be
 *   randomized: encrypting the same plaintext twice gives two different
 *   ciphertexts (a fresh IV or nonce every time), so equal secrets cannot be
 *   spotted in storage. The ciphertext must also be authenticated: any change
 *   to it makes `decrypt` fail.
 * - `decrypt(ciphertext, context)` returns the plaintext given to `encrypt`
 *   only when the ciphertext is intact, was made by this vault (with a key it
 *   still holds) and was made for the same `context`. The context is bound as
 *   additional authenticated data (for AES-GCM: a canonical, injective byte
 *   encoding of the context); it is not stored inside the ciphertext in a way
 *   that `decrypt` trusts. A vault never returns any plaintext, partial or
 *   not, from a ciphertext that failed authentication.
 * - `needsRotation(ciphertext)` (optional) tells, without decrypting, whether
 *   the ciphertext is under a key (or format) other than the one new
 *   encryptions use. It should return `true` for a ciphertext it cannot
 *   parse, so that rotation reports it instead of skipping it.
 * - `reencrypt(ciphertext, context)` (optional) decrypts with whichever key
 *   made the ciphertext and encrypts again under the active key, returning a
 *   fresh ciphertext (a KMS can do this server-side, so the plaintext never
 *   reaches the host). It fails exactly as `decrypt` would.
 *
 * The core builds `rotate()` from these: for every stored tool credential it
 * asks `needsRotation` (without it, every credential counts as needing
 * rotation) and replaces the ciphertext with `reencrypt(...)` (without it,
 * with `encrypt(await decrypt(...))`, holding the plaintext only for that
 * moment). Old keys must stay in the keyring until rotation has finished.
 *
 * Errors: throw `KiloError`.
 *
 * - A missing or malformed key, or a keyring that names no active key:
 *   `CONFIGURATION_INVALID`, with a message naming the option and the
 *   environment variable to fix. Read keys lazily, on first use, so a host
 *   that stores no credentials needs no key, and fail then.
 * - Any decrypt failure (malformed or unknown-version ciphertext, unknown key
 *   id, wrong key, wrong context, tampering): `TOOL_FAILED` with the message
 *   `credential could not be decrypted (wrong key, wrong tool, or tampered)`.
 *   One message for every cause, so the error says nothing about the keys.
 * - An empty `toolId`: `VALIDATION_FAILED`.
 *
 * No message, `details` or `cause` may contain key material, plaintext or
 * ciphertext, and a vault never logs any of them: errors travel to logs,
 * events and sometimes to the model.
 *
 * @example
 * ```ts
 * // A host KMS behind the port (sketch; `kms` is the host's client).
 * const kmsVault: CredentialVault = {
 *   name: "kms",
 *   async encrypt(plaintext, { toolId }) {
 *     const blob = await kms.encrypt({ keyId: "alias/kilo", plaintext, context: { kiloTool: toolId } });
 *     return `kms1:${blob.toString("base64url")}`;
 *   },
 *   async decrypt(ciphertext, { toolId }) {
 *     if (!ciphertext.startsWith("kms1:")) {
 *       throw new KiloError("TOOL_FAILED", "credential could not be decrypted (wrong key, wrong tool, or tampered)");
 *     }
 *     const blob = Buffer.from(ciphertext.slice(5), "base64url");
 *     return kms.decrypt({ blob, context: { kiloTool: toolId } }).catch(() => {
 *       throw new KiloError("TOOL_FAILED", "credential could not be decrypted (wrong key, wrong tool, or tampered)");
 *     });
 *   },
 * };
 * const kilo = createKilo({ storage, providers, vault: kmsVault });
 *
 * // The default: AES-256-GCM, key from KILO_CREDENTIAL_KEY.
 * const vault = aesGcmVault();
 * const stored = await vault.encrypt("sk-live-...", { toolId: "tool_123" });
 * await vault.decrypt(stored, { toolId: "tool_123" }); // "sk-live-..."
 * await vault.decrypt(stored, { toolId: "tool_456" }); // throws KiloError TOOL_FAILED
 * ```
 */
export interface CredentialVault {
  /** Vault name, used in errors and log lines (`aes-gcm`, `kms`). */
  readonly name: string;
  /**
   * Encrypts `plaintext` for the tool named by `context`, under the active
   * key. Resolves to an opaque, versioned, printable ciphertext; a fresh one
   * on every call.
   */
  encrypt(plaintext: string, context: CredentialContext): Promise<string>;
  /**
   * Decrypts a ciphertext made by `encrypt` for the same `context`. Rejects
   * with `TOOL_FAILED` when it cannot authenticate it, never with a partial
   * plaintext.
   */
  decrypt(ciphertext: string, context: CredentialContext): Promise<string>;
  /**
   * Optional: true when the ciphertext is not under the active key and
   * format (or cannot be parsed), so `rotate()` should re-encrypt it.
   */
  needsRotation?(ciphertext: string): boolean;
  /**
   * Optional: decrypts with whichever key made the ciphertext and encrypts
   * again under the active key. Fails as `decrypt` does.
   */
  reencrypt?(ciphertext: string, context: CredentialContext): Promise<string>;
}
