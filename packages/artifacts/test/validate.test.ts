import { describe, expect, it } from "vitest";
import { InvalidInputError, normalizeGrantee, parseDuration, validateArtifactPath, validateOperationId } from "@personal-server/artifacts";

describe("validation (before any I/O)", () => {
  it.each([
    "gemini_1755985390841",
    "op_1755985390841_0a1b2c3d",
    "a",
    "a".repeat(128),
  ])("accepts operation id %s", (id) => expect(validateOperationId(id)).toBe(id));

  it.each(["", "Gemini_1", "_x", "-x", "a".repeat(129), "a/b", "a.b", "a%2e", "..", "a\0b", "ä"])(
    "refuses operation id %j",
    (id) => expect(() => validateOperationId(id)).toThrow(InvalidInputError),
  );

  it.each(["privacy_audit.md", "a/b/c.txt", "A-Z_0.9", ".hidden", "..a", "a".repeat(255), `${"a".repeat(255)}/${"b".repeat(255)}`])("accepts path %s", (p) =>
    expect(validateArtifactPath(p)).toBe(p),
  );

  it.each([
    "",
    "../x",
    "a/../b",
    "/abs",
    "a//b",
    "a/",
    ".",
    "./a",
    "%2e%2e/x",
    "a%2fb",
    "a\\b",
    "a\0b",
    "a b",
    "ａ",
    "a".repeat(513),
    "a".repeat(256),
    `x/${"a".repeat(256)}/y`,
    "e\u0301",
  ])("refuses path %j", (p) => {
    expect(() => validateArtifactPath(p)).toThrow(InvalidInputError);
  });

  it("normalises grantees to lower case: all lower, all upper, or mixed case with a valid EIP-55 checksum", () => {
    // EIP-55's own test vectors, and docs/http-api.md's worked example address.
    for (const address of ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"]) {
      expect(normalizeGrantee(address)).toBe(address.toLowerCase());
      expect(normalizeGrantee(address.toLowerCase())).toBe(address.toLowerCase());
      expect(normalizeGrantee(`0x${address.slice(2).toUpperCase()}`)).toBe(address.toLowerCase());
      // One letter's case changed: the checksum no longer holds.
      const typo = address.replace(/[a-f]/, (c) => c.toUpperCase());
      expect(() => normalizeGrantee(typo)).toThrow("grantee has mixed case but not a valid EIP-55 checksum");
      expect(() => normalizeGrantee(typo, "account")).toThrow("account has mixed case but not a valid EIP-55 checksum");
    }
    expect(() => normalizeGrantee("0xABCDEF0123456789abcdef0123456789ABCDEF01")).toThrow("grantee has mixed case but not a valid EIP-55 checksum");
    for (const bad of ["0x123", "ABCDEF0123456789abcdef0123456789ABCDEF01", "0xZZCDEF0123456789abcdef0123456789ABCDEF01", 42]) {
      expect(() => normalizeGrantee(bad)).toThrow("grantee must be an EVM address: 0x followed by 40 hex digits");
    }
  });

  it("parses durations", () => {
    expect(parseDuration("7d")).toBe(604800);
    expect(parseDuration("36h")).toBe(129600);
    expect(parseDuration("90m")).toBe(5400);
    expect(parseDuration("3600s")).toBe(3600);
    for (const bad of ["7", "d", "0d", "-1d", "1.5h", "7 days", "1w"]) expect(() => parseDuration(bad)).toThrow(InvalidInputError);
  });
});

describe("isContentType", () => {
  it("accepts media types a Content-Type header can carry, and nothing with control characters (found by the HTTP tamper fuzzer)", async () => {
    const { isContentType } = await import("../src/validate.js");
    for (const ok of ["text/plain", "text/plain; charset=utf-8", 'text/markdown; charset="utf-8"', 'a/b;x="two words"']) {
      expect(isContentType(ok)).toBe(true);
    }
    for (const bad of ["text/pl\x0ein", "text/plain;\ncharset=utf-8", 'a/b; x="\x01"', 'a/b; x="\x7f"', "text", `a/${"b".repeat(300)}`]) {
      expect(isContentType(bad)).toBe(false);
    }
  });
});
