/**
 * The SSRF guard: decides whether kilo may send a request to a URL.
 *
 * A URL is allowed only when it is `https:`, carries no credentials, names a
 * well-formed host, and every address that host resolves to (or the literal
 * it names) is a public unicast address. See `docs/security.md`.
 *
 * @module
 */

import { lookup } from "node:dns/promises";
import ipaddr from "ipaddr.js";
import { KiloError } from "../errors.js";

type IPv4 = ipaddr.IPv4;
type IPv6 = ipaddr.IPv6;
type Address = IPv4 | IPv6;

/**
 * Resolves a hostname to IP addresses (IPv4 dotted quads or IPv6 strings).
 * Injected in tests so they never touch real DNS.
 */
export type HostResolver = (hostname: string) => Promise<readonly string[]>;

/** Options of {@link checkOutboundUrl}. */
export interface CheckOutboundUrlOptions {
  /**
   * Resolves hostnames. Defaults to `dns.promises.lookup(host, { all: true, verbatim: true })`,
   * which follows the system resolver (`/etc/hosts`, search domains) as a connection would.
   */
  resolve?: HostResolver;
  /**
   * **Test-only.** Exact IPs or CIDR ranges (`"127.0.0.1"`, `"127.0.0.0/8"`, `"::1/128"`) that are
   * allowed although they are not public, so tests can reach an HTTPS server on 127.0.0.1.
   * Empty by default; never set it in production: every address listed becomes reachable by any
   * URL a model or a tool definition can name. Cloud-metadata addresses are refused even when listed.
   */
  allowPrivateAddresses?: readonly string[];
}

/** The verdict of {@link checkOutboundUrl}. */
export interface OutboundUrlCheck {
  /** True when a request to this URL may be sent (to one of `addresses`). */
  allowed: boolean;
  /** Why the URL was refused, safe to show (names the host and address, never the path or query); null when allowed. */
  reason: string | null;
  /**
   * The addresses checked, canonical form: the literal for an IP URL, every resolved address for a
   * hostname. When allowed, a connection must go to one of these and nowhere else.
   */
  addresses: string[];
}

/**
 * Checks an outbound URL against kilo's SSRF policy.
 *
 * - `https:` only, no userinfo (`https://user@host`), no whitespace, control characters or
 *   backslashes, a non-empty host with no empty labels, port 1-65535.
 * - Hostnames are normalised by the WHATWG URL parser (lowercase, IDNA) and lose one trailing dot.
 *   IPv4 literals in legacy forms (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`) are decoded
 *   before the check; IPv6 zone ids are refused.
 * - The literal, or every address the hostname resolves to, must be public: one private, loopback,
 *   link-local, CGNAT, multicast, broadcast, unspecified, reserved, documentation, benchmarking,
 *   cloud-metadata, unique-local or site-local address refuses the whole URL. IPv6 forms that embed
 *   an IPv4 (mapped, NAT64, 6to4) are judged by the embedded IPv4; IPv4-compatible and Teredo
 *   addresses are always refused.
 *
 * Refusals are returned, not thrown. An invalid `allowPrivateAddresses` entry throws a KiloError
 * `CONFIGURATION_INVALID`.
 *
 * @example
 * ```ts
 * const check = await checkOutboundUrl("https://api.example.com/v1/items");
 * if (!check.allowed) throw new KiloError("SSRF_BLOCKED", check.reason ?? "refused");
 * ```
 */
export async function checkOutboundUrl(
  url: string,
  options: CheckOutboundUrlOptions = {},
): Promise<OutboundUrlCheck> {
  const inspection = await createOutboundInspector(options)(url);
  if (inspection.allowed) return { allowed: true, reason: null, addresses: inspection.target.addresses };
  return { allowed: false, reason: inspection.reason, addresses: inspection.addresses };
}

/** @internal A URL that passed the guard, with what a connection needs. */
export interface OutboundTarget {
  url: URL;
  /** Normalised hostname: no trailing dot, IPv6 without brackets. Used for SNI and Host. */
  hostname: string;
  port: number;
  /** True when the URL names an IP literal (no DNS, no SNI). */
  literal: boolean;
  /** The validated addresses; connect to these only. */
  addresses: string[];
}

/** @internal The guard's full verdict; `failure` tells a refusal from a DNS failure. */
export type OutboundInspection =
  | { allowed: true; target: OutboundTarget }
  | { allowed: false; failure: "refused" | "unresolved"; reason: string; addresses: string[] };

/** @internal Builds the guard once (the allowlist is parsed here) for many URLs. */
export function createOutboundInspector(
  options: CheckOutboundUrlOptions = {},
): (url: string) => Promise<OutboundInspection> {
  const resolve = options.resolve ?? defaultResolver;
  const allowlist = parseAllowlist(options.allowPrivateAddresses ?? []);

  const judge = (address: Address): string | null => {
    const plain = unmapped(address);
    const allowlisted = allowlist.some((entry) => matches(plain, entry));
    const why = metadataReason(plain) ?? (allowlisted ? null : blockedReason(plain));
    return why === null || plain === address ? why : `IPv4-mapped ${plain}, which is ${why}`;
  };

  return async (url) => {
    const parsed = parseTarget(url);
    if (typeof parsed === "string") return refused(parsed, []);
    const { target, literal } = parsed;

    if (literal !== null) {
      const canonical = literal.toString();
      const why = judge(literal);
      if (why !== null) return refused(`${describeHost(target)} is ${why}`, [canonical]);
      return { allowed: true, target: { ...target, literal: true, addresses: [canonical] } };
    }

    let resolved: readonly string[];
    try {
      resolved = await resolve(target.hostname);
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      const detail = typeof code === "string" ? ` (${code})` : "";
      return unresolved(`could not resolve "${target.hostname}"${detail}`);
    }
    if (!Array.isArray(resolved) || resolved.length === 0) {
      return unresolved(`"${target.hostname}" resolved to no address`);
    }

    const addresses: string[] = [];
    let refusal: string | null = null;
    for (const raw of resolved) {
      const address = parseResolvedAddress(raw);
      if (address === null) {
        refusal ??= `"${target.hostname}" resolved to a malformed address`;
        continue;
      }
      const canonical = address.toString();
      if (addresses.includes(canonical)) continue;
      addresses.push(canonical);
      const why = judge(address);
      if (why !== null) refusal ??= `"${target.hostname}" resolves to ${canonical}, which is ${why}`;
    }
    if (refusal !== null) return refused(refusal, addresses);
    return { allowed: true, target: { ...target, literal: false, addresses } };
  };
}

/** @internal The reason an address is refused (allowlist not applied), or null when it is public. */
export function blockedAddressReason(address: string): string | null {
  const parsed = parseResolvedAddress(address);
  if (parsed === null) return "not a valid IP address";
  const plain = unmapped(parsed);
  const why = metadataReason(plain) ?? blockedReason(plain);
  return why === null || plain === parsed ? why : `IPv4-mapped ${plain}, which is ${why}`;
}

const defaultResolver: HostResolver = async (hostname) => {
  const records = await lookup(hostname, { all: true, verbatim: true });
  return records.map((record) => record.address);
};

function refused(reason: string, addresses: string[]): OutboundInspection {
  return { allowed: false, failure: "refused", reason, addresses };
}

function unresolved(reason: string): OutboundInspection {
  return { allowed: false, failure: "unresolved", reason, addresses: [] };
}

function describeHost(target: { hostname: string; literal?: boolean }): string {
  return target.hostname.includes(":") ? `[${target.hostname}]` : target.hostname;
}

// ---------------------------------------------------------------------------------------------------------
// URL parsing

type ParsedTarget = { target: Omit<OutboundTarget, "literal" | "addresses">; literal: Address | null };

const MAX_URL_LENGTH = 8192;

function parseTarget(raw: string): ParsedTarget | string {
  if (typeof raw !== "string" || raw.length === 0) return "the URL is empty";
  if (raw.length > MAX_URL_LENGTH) return `the URL is longer than ${MAX_URL_LENGTH} characters`;
  // The WHATWG parser silently drops tabs and newlines and trims spaces and C0 controls, and reads a
  // backslash as a slash; other parsers do not, so such URLs mean different things to different code.
  if (hasWhitespaceOrControl(raw)) return "the URL contains whitespace or control characters";
  if (raw.includes("\\")) return "the URL contains a backslash";

  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(raw)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== "https") return `only https URLs are allowed (got ${scheme}:)`;
  if (!/^https:\/\/[^/]/i.test(raw)) return "the URL must start with https:// and name a host";

  const authority = raw.slice("https://".length).split(/[/?#]/, 1)[0] ?? "";
  if (authority.includes("@")) return "the URL must not carry credentials (userinfo)";

  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "the URL is malformed";
  }
  if (url.protocol !== "https:") return "only https URLs are allowed";
  if (url.username !== "" || url.password !== "") return "the URL must not carry credentials (userinfo)";

  const port = url.port === "" ? 443 : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return "the URL's port is out of range";

  const host = url.hostname;
  if (host === "") return "the URL has an empty host";

  if (host.startsWith("[")) {
    const inner = host.slice(1, -1);
    if (inner.includes("%")) return "IPv6 zone ids are not allowed";
    if (!ipaddr.IPv6.isValid(inner)) return "the URL's IPv6 literal is malformed";
    const literal = ipaddr.IPv6.parse(inner);
    return { target: { url, hostname: literal.toString(), port }, literal };
  }

  const hostname = host.endsWith(".") ? host.slice(0, -1) : host;
  if (hostname === "") return "the URL has an empty host";
  const labels = hostname.split(".");
  if (labels.some((label) => label === "")) return `the hostname "${host}" has an empty label`;
  if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(hostname)) return "the hostname contains characters not allowed";
  if (hostname.length > 253 || labels.some((label) => label.length > 63)) return "the hostname is too long";

  // WHATWG URL already decodes legacy IPv4 forms for https; decoding again here keeps the guard
  // right even if a different parser (or a future change) hands us an undecoded form.
  if (labels.every((label) => /^(0x[0-9a-f]*|[0-9]+)$/i.test(label))) {
    const literal = parseLegacyIPv4(hostname);
    if (literal === null) return "the URL's IPv4 literal is malformed";
    return { target: { url, hostname: literal.toString(), port }, literal };
  }

  if (hostname === "localhost" || hostname.endsWith(".localhost")) {
    return `"${hostname}" is a loopback name (RFC 6761)`;
  }
  return { target: { url, hostname, port }, literal: null };
}

function hasWhitespaceOrControl(text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code <= 0x20 || code === 0x7f) return true;
  }
  return false;
}

/**
 * @internal Decodes an inet_aton-style IPv4 literal: 1-4 dot-separated parts, each decimal, octal
 * (leading 0) or hex (0x), the last part filling the remaining bytes (`127.1`, `0x7f000001`).
 * Returns null for anything else or out of range.
 */
export function parseLegacyIPv4(text: string): IPv4 | null {
  const labels = text.split(".");
  if (labels.length > 4 || !labels.every((label) => /^(0x[0-9a-f]*|[0-9]+)$/i.test(label))) return null;
  const numbers: number[] = [];
  for (const label of labels) {
    let value: number;
    if (/^0x/i.test(label)) value = label.length === 2 ? 0 : Number.parseInt(label.slice(2), 16);
    else if (label.length > 1 && label.startsWith("0")) {
      if (!/^[0-7]+$/.test(label)) return null;
      value = Number.parseInt(label, 8);
    } else value = Number.parseInt(label, 10);
    if (!Number.isSafeInteger(value)) return null;
    numbers.push(value);
  }
  const last = numbers.pop() ?? 0;
  if (numbers.some((n) => n > 255)) return null;
  if (last >= 256 ** (4 - numbers.length)) return null;
  const octets = [...numbers];
  for (let shift = 3 - numbers.length; shift >= 0; shift--)
    octets.push(Math.floor(last / 256 ** shift) % 256);
  return new ipaddr.IPv4(octets);
}

/** Resolver output must be a strict dotted quad or an IPv6 string; anything looser is not trusted. */
function parseResolvedAddress(raw: unknown): Address | null {
  if (typeof raw !== "string") return null;
  if (ipaddr.IPv4.isValidFourPartDecimal(raw)) return ipaddr.IPv4.parse(raw);
  if (raw.includes(":") && ipaddr.IPv6.isValid(raw)) return ipaddr.IPv6.parse(raw);
  return null;
}

// ---------------------------------------------------------------------------------------------------------
// Address policy

type Range = [Address, number];

function cidr(text: string): Range {
  return ipaddr.parseCIDR(text);
}

function matches(address: Address, range: Range): boolean {
  return address.kind() === range[0].kind() && address.match(range);
}

function unmapped(address: Address): Address {
  return address.kind() === "ipv6" && (address as IPv6).isIPv4MappedAddress()
    ? (address as IPv6).toIPv4Address()
    : address;
}

const METADATA: readonly Address[] = [
  "169.254.169.254", // AWS, GCP, Azure, OpenStack, DigitalOcean, ...
  "169.254.170.2", // AWS ECS task metadata
  "100.100.100.200", // Alibaba Cloud
  "168.63.129.16", // Azure wire server (public space, host-local meaning)
  "192.0.0.192", // Oracle Cloud
  "fd00:ec2::254", // AWS IMDS over IPv6
].map((text) => ipaddr.parse(text));

function metadataReason(address: Address): string | null {
  const hit = METADATA.some(
    (entry) => entry.kind() === address.kind() && entry.toString() === address.toString(),
  );
  return hit ? "a cloud metadata address" : null;
}

const IPV4_BLOCKED: ReadonlyArray<[Range, string]> = [
  [cidr("0.0.0.0/8"), "unspecified (0.0.0.0/8)"],
  [cidr("10.0.0.0/8"), "private (10.0.0.0/8)"],
  [cidr("100.64.0.0/10"), "carrier-grade NAT (100.64.0.0/10)"],
  [cidr("127.0.0.0/8"), "loopback (127.0.0.0/8)"],
  [cidr("169.254.0.0/16"), "link-local (169.254.0.0/16)"],
  [cidr("172.16.0.0/12"), "private (172.16.0.0/12)"],
  [cidr("192.0.0.0/24"), "IETF protocol assignments (192.0.0.0/24)"],
  [cidr("192.0.2.0/24"), "documentation (192.0.2.0/24)"],
  [cidr("192.88.99.0/24"), "6to4 relay anycast (192.88.99.0/24)"],
  [cidr("192.168.0.0/16"), "private (192.168.0.0/16)"],
  [cidr("198.18.0.0/15"), "benchmarking (198.18.0.0/15)"],
  [cidr("198.51.100.0/24"), "documentation (198.51.100.0/24)"],
  [cidr("203.0.113.0/24"), "documentation (203.0.113.0/24)"],
  [cidr("224.0.0.0/4"), "multicast (224.0.0.0/4)"],
  [cidr("255.255.255.255/32"), "broadcast (255.255.255.255)"],
  [cidr("240.0.0.0/4"), "reserved (240.0.0.0/4)"],
];

const IPV6_BLOCKED: ReadonlyArray<[Range, string]> = [
  [cidr("::/128"), "unspecified (::)"],
  [cidr("::1/128"), "loopback (::1)"],
  [cidr("100::/64"), "discard-only (100::/64)"],
  [cidr("2001:db8::/32"), "documentation (2001:db8::/32)"],
  [cidr("3fff::/20"), "documentation (3fff::/20)"],
  [cidr("2001:2::/48"), "benchmarking (2001:2::/48)"],
  [cidr("2001::/23"), "IETF protocol assignments (2001::/23)"],
  [cidr("fc00::/7"), "unique-local (fc00::/7)"],
  [cidr("fec0::/10"), "site-local (fec0::/10)"],
  [cidr("fe80::/10"), "link-local (fe80::/10)"],
  [cidr("ff00::/8"), "multicast (ff00::/8)"],
];

const IPV4_COMPATIBLE = cidr("::/96");
const IPV4_TRANSLATED = cidr("::ffff:0:0:0/96");
const NAT64_WELL_KNOWN = cidr("64:ff9b::/96");
const NAT64_LOCAL = cidr("64:ff9b:1::/48");
const SIX_TO_FOUR = cidr("2002::/16");
const TEREDO = cidr("2001::/32");
const GLOBAL_UNICAST = cidr("2000::/3");

function embeddedIPv4(high: number | undefined, low: number | undefined): IPv4 {
  const h = high ?? 0;
  const l = low ?? 0;
  return new ipaddr.IPv4([h >> 8, h & 0xff, l >> 8, l & 0xff]);
}

function blockedReason(address: Address): string | null {
  if (address.kind() === "ipv4") return blockedIPv4Reason(address as IPv4);
  return blockedIPv6Reason(address as IPv6);
}

function blockedIPv4Reason(address: IPv4): string | null {
  for (const [range, label] of IPV4_BLOCKED) if (address.match(range)) return label;
  // Belt and braces: whatever ipaddr.js knows as special that the table above misses.
  const range = address.range();
  return range === "unicast" ? null : `special-purpose (${range})`;
}

function blockedIPv6Reason(address: IPv6): string | null {
  if (address.zoneId !== undefined) return "an IPv6 address with a zone id";
  const parts = address.parts;

  // Forms that carry an IPv4 inside are judged by that IPv4 (ipaddr.js calls some of them "unicast").
  if (address.match(IPV4_TRANSLATED))
    return `an IPv4-translated address (embeds ${embeddedIPv4(parts[6], parts[7])})`;
  for (const [range, label] of IPV6_BLOCKED.slice(0, 2)) if (address.match(range)) return label;
  if (address.match(IPV4_COMPATIBLE)) {
    return `a deprecated IPv4-compatible address (embeds ${embeddedIPv4(parts[6], parts[7])})`;
  }
  if (address.match(NAT64_LOCAL)) return "local-use NAT64 (64:ff9b:1::/48)";
  if (address.match(NAT64_WELL_KNOWN)) {
    const inner = embeddedIPv4(parts[6], parts[7]);
    const why = metadataReason(inner) ?? blockedIPv4Reason(inner);
    return why === null ? null : `NAT64 for ${inner}, which is ${why}`;
  }
  if (address.match(TEREDO)) {
    // The client IPv4 is obfuscated (bitwise NOT) in the last 32 bits; a tunnel endpoint is never an API.
    const client = embeddedIPv4(~(parts[6] ?? 0) & 0xffff, ~(parts[7] ?? 0) & 0xffff);
    return `Teredo (2001::/32, tunnels to ${embeddedIPv4(parts[2], parts[3])} / ${client})`;
  }
  if (address.match(SIX_TO_FOUR)) {
    const inner = embeddedIPv4(parts[1], parts[2]);
    const why = metadataReason(inner) ?? blockedIPv4Reason(inner);
    return why === null ? null : `6to4 for ${inner}, which is ${why}`;
  }

  for (const [range, label] of IPV6_BLOCKED) if (address.match(range)) return label;
  if (!address.match(GLOBAL_UNICAST)) return "outside global unicast (2000::/3)";
  const range = address.range();
  return range === "unicast" ? null : `special-purpose (${range})`;
}

function parseAllowlist(entries: readonly string[]): Range[] {
  if (!Array.isArray(entries)) {
    throw new KiloError("CONFIGURATION_INVALID", "allowPrivateAddresses must be an array of IPs or CIDRs");
  }
  return entries.map((entry) => {
    if (typeof entry === "string") {
      if (ipaddr.isValidCIDR(entry)) {
        const [address, bits] = ipaddr.parseCIDR(entry);
        return address.kind() === "ipv6" && (address as IPv6).isIPv4MappedAddress() && bits >= 96
          ? ([(address as IPv6).toIPv4Address(), bits - 96] as Range)
          : ([address, bits] as Range);
      }
      const address = parseResolvedAddress(entry);
      if (address !== null) {
        const plain = unmapped(address);
        return [plain, plain.kind() === "ipv4" ? 32 : 128] as Range;
      }
    }
    throw new KiloError(
      "CONFIGURATION_INVALID",
      `allowPrivateAddresses: ${JSON.stringify(String(entry)).slice(0, 80)} is not an IP address or CIDR range`,
    );
  });
}
