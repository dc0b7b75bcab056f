import ipaddr from "ipaddr.js";
import { describe, expect, it } from "vitest";
import { KiloError } from "../../src/errors.js";
import { checkOutboundUrl } from "../../src/tools/index.js";
import { blockedAddressReason, parseLegacyIPv4 } from "../../src/tools/url-guard.js";
import { tableResolver } from "./helpers/https-test-server.js";

const PUBLIC_V4 = "93.184.216.34";
const PUBLIC_V6 = "2606:4700:4700::1111";

/** A resolver that must never be reached (literal URLs and early refusals). */
const noDns = async (hostname: string): Promise<string[]> => {
  throw new Error(`unexpected DNS lookup for ${hostname}`);
};

async function verdict(url: string, resolved: readonly string[] = [PUBLIC_V4]) {
  return checkOutboundUrl(url, { resolve: async () => resolved });
}

describe("checkOutboundUrl: schemes and URL shape", () => {
  it.each([
    ["http://api.example.com/", /only https/],
    ["HTTP://api.example.com/", /only https/],
    ["ftp://api.example.com/", /only https/],
    ["file:///etc/passwd", /only https/],
    ["gopher://127.0.0.1:6379/_INFO", /only https/],
    ["javascript:alert(1)", /only https/],
    ["//api.example.com/", /must start with https/],
    ["api.example.com/v1", /must start with https/],
    ["https:api.example.com", /must start with https/],
    ["https:/api.example.com", /must start with https/],
    ["https:///path", /must start with https/],
    ["", /empty/],
  ])("refuses %j", async (url, reason) => {
    const check = await checkOutboundUrl(url, { resolve: noDns });
    expect(check.allowed).toBe(false);
    expect(check.reason).toMatch(reason);
    expect(check.addresses).toEqual([]);
  });

  it.each([
    ["https://api.example.com/\n"],
    [" https://api.example.com/"],
    ["https://127.0.0.\t1/"],
    ["https://api.example.com/a b"],
    ["https://api.example.com/\u0000"],
  ])("refuses whitespace and control characters the URL parser would silently drop: %j", async (url) => {
    const check = await checkOutboundUrl(url, { resolve: noDns });
    expect(check).toMatchObject({ allowed: false, reason: expect.stringMatching(/whitespace or control/) });
  });

  it("refuses backslashes (the WHATWG parser reads them as slashes, others do not)", async () => {
    const check = await checkOutboundUrl("https://127.0.0.1\\@api.example.com/", { resolve: noDns });
    expect(check).toMatchObject({ allowed: false, reason: expect.stringMatching(/backslash/) });
  });

  it.each([
    ["https://api.example.com..", /empty label/],
    ["https://a..example.com/", /empty label/],
    ["https://api.example.com:0/", /port/],
    ["https://api.example.com:99999/", /malformed/],
    ["https://exa mple.com/", /whitespace/],
    ["https://999.1.1.1/", /malformed/],
    ["https://1.2.3.4.5/", /malformed/],
    ["https://08.0.0.1/", /malformed/],
    ["https://localhost/", /loopback name/],
    ["https://LOCALHOST./", /loopback name/],
    ["https://api.localhost/", /loopback name/],
  ])("refuses the malformed or loopback host in %j", async (url, reason) => {
    const check = await checkOutboundUrl(url, { resolve: noDns });
    expect(check.allowed).toBe(false);
    expect(check.reason).toMatch(reason);
  });

  it("allows a public hostname and returns the addresses it checked", async () => {
    const dns = tableResolver({ "api.example.com": [PUBLIC_V4, PUBLIC_V6] });
    const check = await checkOutboundUrl("https://api.example.com/v1/items?limit=5", {
      resolve: dns.resolve,
    });
    expect(check).toEqual({ allowed: true, reason: null, addresses: [PUBLIC_V4, PUBLIC_V6] });
    expect(dns.calls).toEqual(["api.example.com"]);
  });

  it("allows a non-default port", async () => {
    expect((await verdict("https://api.example.com:8443/")).allowed).toBe(true);
  });

  it("normalises case, one trailing dot and IDNA before resolving", async () => {
    const dns = tableResolver({ "api.example.com": [PUBLIC_V4], "xn--bcher-kva.example": [PUBLIC_V4] });
    expect((await checkOutboundUrl("HTTPS://API.Example.COM./x", { resolve: dns.resolve })).allowed).toBe(
      true,
    );
    expect((await checkOutboundUrl("https://bücher.example/", { resolve: dns.resolve })).allowed).toBe(true);
    expect(dns.calls).toEqual(["api.example.com", "xn--bcher-kva.example"]);
  });

  it("never puts the path or query in a reason", async () => {
    const check = await checkOutboundUrl("https://10.0.0.1/secret-path?api_key=canary123", {
      resolve: noDns,
    });
    expect(check.allowed).toBe(false);
    expect(check.reason).not.toMatch(/secret-path|canary123/);
  });
});

describe("checkOutboundUrl: userinfo tricks", () => {
  it.each([
    "https://api.example.com@127.0.0.1/",
    "https://user:pass@api.example.com/",
    "https://user@api.example.com/",
    "https://@api.example.com/",
    "https://:@api.example.com/",
    "https://api.example.com:443@10.0.0.1/",
  ])("refuses %j", async (url) => {
    const check = await checkOutboundUrl(url, { resolve: noDns });
    expect(check).toMatchObject({
      allowed: false,
      reason: expect.stringMatching(/credentials \(userinfo\)/),
    });
  });

  it("reads https://127.0.0.1#@api.example.com as 127.0.0.1 and refuses it", async () => {
    const check = await checkOutboundUrl("https://127.0.0.1#@api.example.com", { resolve: noDns });
    expect(check).toEqual({
      allowed: false,
      reason: expect.stringMatching(/^127\.0\.0\.1 is loopback/),
      addresses: ["127.0.0.1"],
    });
  });

  it("reads https://127.0.0.1?@api.example.com as 127.0.0.1 and refuses it", async () => {
    const check = await checkOutboundUrl("https://127.0.0.1?@api.example.com", { resolve: noDns });
    expect(check).toMatchObject({ allowed: false, addresses: ["127.0.0.1"] });
  });
});

describe("checkOutboundUrl: IPv4 literals in legacy encodings", () => {
  it.each([
    ["https://127.0.0.1/", "127.0.0.1"],
    ["https://2130706433/", "127.0.0.1"],
    ["https://0177.0.0.1/", "127.0.0.1"],
    ["https://00000177.0.0.01/", "127.0.0.1"],
    ["https://0x7f.0.0.1/", "127.0.0.1"],
    ["https://0x7F000001/", "127.0.0.1"],
    ["https://0x7f.1/", "127.0.0.1"],
    ["https://127.1/", "127.0.0.1"],
    ["https://127.0.1/", "127.0.0.1"],
    ["https://0177.0x0.1/", "127.0.0.1"],
    ["https://127.0.0.1./", "127.0.0.1"],
    ["https://%31%32%37.0.0.1/", "127.0.0.1"],
    ["https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "127.0.0.1"],
    ["https://10.1/", "10.0.0.1"],
    ["https://167772161/", "10.0.0.1"],
    ["https://012.0.0.1/", "10.0.0.1"],
    ["https://0xa9.0xfe.0xa9.0xfe/", "169.254.169.254"],
    ["https://2852039166/", "169.254.169.254"],
    ["https://0/", "0.0.0.0"],
    ["https://0x/", "0.0.0.0"],
    ["https://3232235777/", "192.168.1.1"],
    ["https://0xc0a80101/", "192.168.1.1"],
  ])("refuses %j as %s", async (url, address) => {
    const check = await checkOutboundUrl(url, { resolve: noDns });
    expect(check.allowed).toBe(false);
    expect(check.addresses).toEqual([address]);
    expect(check.reason).toMatch(new RegExp(`^${address.replaceAll(".", "\\.")} is `));
  });

  it("allows a public IPv4 literal without asking DNS", async () => {
    expect(await checkOutboundUrl(`https://${PUBLIC_V4}/`, { resolve: noDns })).toEqual({
      allowed: true,
      reason: null,
      addresses: [PUBLIC_V4],
    });
    expect(await checkOutboundUrl("https://1572395042/", { resolve: noDns })).toMatchObject({
      allowed: true,
      addresses: [PUBLIC_V4],
    });
  });

  it("decodes legacy forms itself too, not only through the URL parser", () => {
    const decode = (text: string) => parseLegacyIPv4(text)?.toString() ?? null;
    expect(decode("2130706433")).toBe("127.0.0.1");
    expect(decode("0177.0.0.1")).toBe("127.0.0.1");
    expect(decode("0x7f.0.0.1")).toBe("127.0.0.1");
    expect(decode("0x7f000001")).toBe("127.0.0.1");
    expect(decode("127.1")).toBe("127.0.0.1");
    expect(decode("10.1")).toBe("10.0.0.1");
    expect(decode("192.168.257")).toBe("192.168.1.1");
    expect(decode("0x7f.0177.0.1")).toBe("127.127.0.1");
    expect(decode("0x")).toBe("0.0.0.0");
    expect(decode("256.0.0.1")).toBeNull();
    expect(decode("4294967296")).toBeNull();
    expect(decode("1.2.3.4.5")).toBeNull();
    expect(decode("08.0.0.1")).toBeNull();
    expect(decode("1.2.3.256")).toBeNull();
    expect(decode("example.com")).toBeNull();
  });
});

describe("checkOutboundUrl: IPv6 literals", () => {
  it.each([
    ["https://[::1]/", /loopback/],
    ["https://[0:0:0:0:0:0:0:1]/", /loopback/],
    ["https://[::]/", /unspecified/],
    ["https://[::ffff:127.0.0.1]/", /IPv4-mapped 127\.0\.0\.1, which is loopback/],
    ["https://[::ffff:7f00:1]/", /IPv4-mapped 127\.0\.0\.1/],
    ["https://[::ffff:10.0.0.1]/", /IPv4-mapped 10\.0\.0\.1, which is private/],
    ["https://[::ffff:169.254.169.254]/", /cloud metadata/],
    ["https://[::127.0.0.1]/", /IPv4-compatible address \(embeds 127\.0\.0\.1\)/],
    ["https://[::8.8.8.8]/", /IPv4-compatible/],
    ["https://[::ffff:0:127.0.0.1]/", /IPv4-translated/],
    ["https://[64:ff9b::127.0.0.1]/", /NAT64 for 127\.0\.0\.1, which is loopback/],
    ["https://[64:ff9b::a00:1]/", /NAT64 for 10\.0\.0\.1, which is private/],
    ["https://[64:ff9b::a9fe:a9fe]/", /NAT64 for 169\.254\.169\.254, which is a cloud metadata address/],
    ["https://[64:ff9b:1::5db8:d822]/", /local-use NAT64/],
    ["https://[2002:7f00:1::1]/", /6to4 for 127\.0\.0\.1, which is loopback/],
    ["https://[2002:c0a8:101::]/", /6to4 for 192\.168\.1\.1, which is private/],
    ["https://[2002:a9fe:a9fe::1]/", /6to4 for 169\.254\.169\.254/],
    ["https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", /Teredo/],
    ["https://[2001:0:5db8:d822::1]/", /Teredo/],
    ["https://[fc00::1]/", /unique-local/],
    ["https://[fd12:3456::1]/", /unique-local/],
    ["https://[fd00:ec2::254]/", /cloud metadata/],
    ["https://[fe80::1]/", /link-local/],
    ["https://[febf:ffff::1]/", /link-local/],
    ["https://[fec0::1]/", /site-local/],
    ["https://[ff02::1]/", /multicast/],
    ["https://[2001:db8::1]/", /documentation/],
    ["https://[3fff::1]/", /documentation/],
    ["https://[2001:2::1]/", /benchmarking/],
    ["https://[100::1]/", /discard/],
    ["https://[5f00::1]/", /outside global unicast/],
    ["https://[4000::1]/", /outside global unicast/],
  ])("refuses %j", async (url, reason) => {
    const check = await checkOutboundUrl(url, { resolve: noDns });
    expect(check.allowed).toBe(false);
    expect(check.reason).toMatch(reason);
    expect(check.addresses).toHaveLength(1);
  });

  it("refuses zone ids", async () => {
    expect((await checkOutboundUrl("https://[fe80::1%25eth0]/", { resolve: noDns })).allowed).toBe(false);
    expect((await verdict("https://zoned.example.com/", ["fe80::1%eth0"])).allowed).toBe(false);
    expect((await verdict("https://zoned.example.com/", [`${PUBLIC_V6}%eth0`])).allowed).toBe(false);
  });

  it.each([
    [`https://[${PUBLIC_V6}]/`],
    ["https://[::ffff:93.184.216.34]/"],
    ["https://[64:ff9b::93.184.216.34]/"],
    ["https://[2002:5db8:d822::1]/"],
  ])("allows the public address %j (embedded IPv4 forms judged by the IPv4)", async (url) => {
    const check = await checkOutboundUrl(url, { resolve: noDns });
    expect(check).toMatchObject({ allowed: true, reason: null });
  });

  it("does not trust ipaddr.js's 'unicast' for forms that embed an IPv4", () => {
    // ipaddr.js has no range for IPv4-compatible addresses, so it calls ::127.0.0.1 plain unicast.
    expect(ipaddr.parse("::7f00:1").range()).toBe("unicast");
    expect(blockedAddressReason("::7f00:1")).toMatch(/IPv4-compatible/);
    for (const address of ["::ffff:7f00:1", "64:ff9b::7f00:1", "2002:7f00:1::"]) {
      expect(ipaddr.parse(address).range()).not.toMatch(/loopback/);
      expect(blockedAddressReason(address)).toMatch(/127\.0\.0\.1, which is loopback/);
    }
  });
});

describe("checkOutboundUrl: resolved addresses", () => {
  it.each([
    ["10.0.0.1", /private \(10/],
    ["10.255.255.255", /private/],
    ["172.16.0.1", /private \(172\.16/],
    ["172.31.255.255", /private/],
    ["192.168.0.1", /private \(192\.168/],
    ["127.0.0.1", /loopback/],
    ["127.255.255.254", /loopback/],
    ["169.254.1.1", /link-local/],
    ["100.64.0.1", /carrier-grade NAT/],
    ["100.127.255.255", /carrier-grade NAT/],
    ["224.0.0.1", /multicast/],
    ["239.255.255.250", /multicast/],
    ["255.255.255.255", /broadcast/],
    ["0.0.0.0", /unspecified/],
    ["0.1.2.3", /unspecified/],
    ["240.0.0.1", /reserved/],
    ["250.1.2.3", /reserved/],
    ["192.0.2.10", /documentation/],
    ["198.51.100.10", /documentation/],
    ["203.0.113.10", /documentation/],
    ["198.18.0.1", /benchmarking/],
    ["198.19.255.255", /benchmarking/],
    ["192.0.0.8", /IETF/],
    ["192.88.99.1", /6to4 relay/],
    ["169.254.169.254", /cloud metadata/],
    ["169.254.170.2", /cloud metadata/],
    ["100.100.100.200", /cloud metadata/],
    ["192.0.0.192", /cloud metadata/],
    ["::1", /loopback/],
    ["::", /unspecified/],
    ["::ffff:127.0.0.1", /IPv4-mapped/],
    ["fd00:ec2::254", /cloud metadata/],
    ["fe80::1", /link-local/],
    ["fc00::1", /unique-local/],
    ["2001:db8::1", /documentation/],
  ])("refuses a hostname resolving to %s", async (address, reason) => {
    const check = await verdict("https://api.example.com/", [address]);
    expect(check.allowed).toBe(false);
    expect(check.reason).toMatch(/^"api\.example\.com" resolves to /);
    expect(check.reason).toMatch(reason);
  });

  it.each([
    ["8.8.8.8"],
    ["1.1.1.1"],
    ["172.15.255.255"],
    ["172.32.0.1"],
    ["100.63.255.255"],
    ["100.128.0.1"],
    ["198.17.255.255"],
    ["198.20.0.1"],
    ["192.0.3.1"],
    ["223.255.255.255"],
    [PUBLIC_V4],
    [PUBLIC_V6],
  ])("allows a hostname resolving to the public address %s", async (address) => {
    expect(await verdict("https://api.example.com/", [address])).toEqual({
      allowed: true,
      reason: null,
      addresses: [address],
    });
  });

  it("refuses a hostname resolving to mixed public and private addresses, whatever the order", async () => {
    for (const addresses of [
      [PUBLIC_V4, "10.0.0.1"],
      ["10.0.0.1", PUBLIC_V4],
      [PUBLIC_V4, PUBLIC_V6, "::1"],
      [PUBLIC_V6, "169.254.169.254"],
    ]) {
      const check = await verdict("https://api.example.com/", addresses);
      expect(check.allowed).toBe(false);
      expect(check.reason).toMatch(/resolves to (10\.0\.0\.1|::1|169\.254\.169\.254)/);
      expect(check.addresses).toEqual(addresses);
    }
  });

  it("refuses when DNS fails, answers nothing, or answers in a non-canonical form", async () => {
    const failing = await checkOutboundUrl("https://nowhere.example.com/", {
      resolve: tableResolver({}).resolve,
    });
    expect(failing).toEqual({
      allowed: false,
      reason: expect.stringMatching(/could not resolve.*ENOTFOUND/),
      addresses: [],
    });
    expect(await verdict("https://api.example.com/", [])).toMatchObject({
      allowed: false,
      reason: expect.stringMatching(/no address/),
    });
    for (const odd of ["0177.0.0.1", "2130706433", "127.1", "not-an-ip", ""]) {
      expect(await verdict("https://api.example.com/", [odd])).toMatchObject({
        allowed: false,
        reason: expect.stringMatching(/malformed address/),
      });
    }
  });

  it("deduplicates resolved addresses", async () => {
    expect((await verdict("https://api.example.com/", [PUBLIC_V4, PUBLIC_V4])).addresses).toEqual([
      PUBLIC_V4,
    ]);
  });
});

describe("checkOutboundUrl: the test-only allowlist", () => {
  it("is off by default", async () => {
    expect((await checkOutboundUrl("https://127.0.0.1:8443/", { resolve: noDns })).allowed).toBe(false);
  });

  it("lets exact addresses and CIDRs through, and nothing else", async () => {
    const options = { resolve: noDns, allowPrivateAddresses: ["127.0.0.1", "10.1.0.0/16", "fd00:1::/32"] };
    expect((await checkOutboundUrl("https://127.0.0.1:8443/", options)).allowed).toBe(true);
    expect((await checkOutboundUrl("https://[::ffff:127.0.0.1]/", options)).allowed).toBe(true);
    expect((await checkOutboundUrl("https://127.0.0.2/", options)).allowed).toBe(false);
    expect((await checkOutboundUrl("https://10.1.2.3/", options)).allowed).toBe(true);
    expect((await checkOutboundUrl("https://10.2.0.1/", options)).allowed).toBe(false);
    expect((await checkOutboundUrl("https://[fd00:1::5]/", options)).allowed).toBe(true);
    expect((await checkOutboundUrl("https://[::1]/", options)).allowed).toBe(false);
    const dns = { resolve: async () => ["127.0.0.1"], allowPrivateAddresses: ["127.0.0.1"] };
    expect(await checkOutboundUrl("https://api.test.kilo/", dns)).toEqual({
      allowed: true,
      reason: null,
      addresses: ["127.0.0.1"],
    });
  });

  it("never opens cloud metadata addresses", async () => {
    const options = {
      resolve: noDns,
      allowPrivateAddresses: ["169.254.0.0/16", "100.64.0.0/10", "fd00::/8"],
    };
    expect((await checkOutboundUrl("https://169.254.169.254/", options)).allowed).toBe(false);
    expect((await checkOutboundUrl("https://100.100.100.200/", options)).allowed).toBe(false);
    expect((await checkOutboundUrl("https://[fd00:ec2::254]/", options)).allowed).toBe(false);
    expect((await checkOutboundUrl("https://169.254.1.1/", options)).allowed).toBe(true);
  });

  it("rejects entries that are not IPs or CIDRs", async () => {
    for (const entry of ["localhost", "10.0.0.0/33", "127.1", ""]) {
      const error = await checkOutboundUrl("https://api.example.com/", {
        resolve: noDns,
        allowPrivateAddresses: [entry],
      }).catch((caught: unknown) => caught);
      expect(KiloError.is(error, "CONFIGURATION_INVALID")).toBe(true);
    }
  });
});
