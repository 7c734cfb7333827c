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

  it.each(["privacy_audit.md", "a/b/c.txt", "A-Z_0.9", ".hidden", "..a", "a".repeat(512)])("accepts path %s", (p) =>
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
    "e\u0301",
  ])("refuses path %j", (p) => {
    expect(() => validateArtifactPath(p)).toThrow(InvalidInputError);
  });

  it("normalises grantees to lower case and refuses non-addresses", () => {
    expect(normalizeGrantee("0xABCDEF0123456789abcdef0123456789ABCDEF01")).toBe("0xabcdef0123456789abcdef0123456789abcdef01");
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
