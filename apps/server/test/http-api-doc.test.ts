// docs/http-api.md must stay true to the server: its routes table lists exactly the routes and
// methods the server answers, and its worked Web3Signed example stays reproducible (its text,
// encoding, signature and header agree with each other, with viem, and with the server's verifier).
import { readFileSync } from "node:fs";
import {
  AGENT,
  ERROR_STATUS,
  MAX_PATH_BYTES,
  MAX_SEGMENT_BYTES,
  OPERATION_ID,
  PATH_SEGMENT,
  normalizeGrantee,
  validateAgent,
  validateArtifactPath,
  validateOperationId,
} from "@personal-server/artifacts";
import { web3SignedAuthorization } from "@personal-server/artifacts/client";
import { privateKeyToAccount } from "viem/accounts";
import { recoverMessageAddress } from "viem/utils";
import { describe, expect, it } from "vitest";
import { NonceCache } from "../src/auth/nonce-cache.js";
import { acceptedAudiences, verifyWeb3Signed } from "../src/auth/web3signed.js";
import { ROUTES, matchRoute } from "../src/routes.js";

const doc = readFileSync(new URL("../../../docs/http-api.md", import.meta.url), "utf8");
const example = doc.slice(doc.indexOf("### Worked example"), doc.indexOf("## Clients"));
const grab = (pattern: RegExp): string => {
  const match = pattern.exec(example);
  if (match === null) throw new Error(`docs/http-api.md worked example lacks ${pattern}`);
  return match[1]!;
};

describe("docs/http-api.md routes", () => {
  const table = doc.slice(doc.indexOf("## Routes\n"), doc.indexOf("\n## ", doc.indexOf("## Routes\n") + 1));
  /** `METHOD[\|METHOD] /path[?query]` in the first cell of each row, one entry per method. */
  const documented = [...table.matchAll(/^\| `([A-Z]+(?:\\\|[A-Z]+)*) (\/[^`?\s]*)/gm)].flatMap(([, methods, path]) =>
    methods!.split("\\|").map((method) => `${method} ${path}`),
  );

  it("lists every route and method the server answers, and no others", () => {
    const served = Object.values(ROUTES).flatMap((r) => r.methods.map((method) => `${method} ${r.label}`));
    expect([...new Set(documented)].sort()).toEqual(served.sort());
  });

  it("names each route by the pattern the server matches", () => {
    for (const entry of documented) {
      const path = entry.slice(entry.indexOf(" ") + 1);
      const sample = path.replace(":id", "op_1").replace(":path*", "dir/file.txt");
      expect(matchRoute(sample)?.label, entry).toBe(path);
    }
  });
});

describe("docs/http-api.md errors", () => {
  it("lists every error code with the status the server answers", () => {
    const errors = doc.slice(doc.indexOf("## Errors\n"), doc.indexOf("## Check order\n"));
    const rows = [...errors.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map(([, code, status]) => [code, Number(status)]);
    expect(Object.fromEntries(rows)).toEqual(ERROR_STATUS);
    expect(rows).toHaveLength(Object.keys(ERROR_STATUS).length);
  });
});

describe("docs/http-api.md ids and paths", () => {
  const section = doc.slice(doc.indexOf("## Ids and paths\n"), doc.indexOf("\n## ", doc.indexOf("## Ids and paths\n") + 1));
  /** The rule of the row whose first cell is `what` (or `what (…)`). */
  const rule = (what: string): string => {
    const rows = [...section.matchAll(/^\| (.+?) \| (.+) \|$/gm)];
    const row = rows.find(([, cell]) => cell === what || cell!.startsWith(`${what} (`));
    if (row === undefined) throw new Error(`docs/http-api.md "Ids and paths" has no row for ${what}`);
    return row[2]!;
  };
  const pattern = (what: string): string => /`(\^[^`]+\$)`/.exec(rule(what))![1]!;

  it("quotes the very patterns the SDK validates with, and its byte limits", () => {
    expect(pattern("operation id")).toBe(OPERATION_ID.source);
    expect(pattern("agent")).toBe(AGENT.source);
    expect(pattern("artifact path segment")).toBe(PATH_SEGMENT.source);
    expect(PATH_SEGMENT.source).toContain(`{1,${MAX_SEGMENT_BYTES}}`);
    expect(rule("artifact path")).toContain(`at most ${MAX_PATH_BYTES} bytes`);
    // And the validators hold to them at their edges.
    expect(validateOperationId("a".repeat(128))).toHaveLength(128);
    expect(() => validateOperationId("a".repeat(129))).toThrow();
    expect(validateAgent("a".repeat(100))).toHaveLength(100);
    expect(() => validateAgent("a".repeat(101))).toThrow();
    expect(validateArtifactPath("s".repeat(MAX_SEGMENT_BYTES))).toBeTruthy();
    expect(() => validateArtifactPath("s".repeat(MAX_SEGMENT_BYTES + 1))).toThrow();
    expect(rule("grantee address")).toContain("all lower case, all upper case, or mixed case with a valid [EIP-55]");
    expect(normalizeGrantee("0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A")).toBe("0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a");
    expect(() => normalizeGrantee("0x19e7E376E7C213B7E7e7e46cc70A5dD086DAff2A")).toThrow("grantee has mixed case but not a valid EIP-55 checksum");
  });

  it("gives a malformed Web3Signed payload field the status the server answers (401), in the Errors table and in Authentication", async () => {
    const errors = doc.slice(doc.indexOf("## Errors\n"), doc.indexOf("## Check order\n"));
    const row = [...errors.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \| (.+) \|$/gm)].find(([, , , when]) => when!.includes("Web3Signed payload field"));
    const auth = doc.slice(doc.indexOf("## Authentication\n"));
    expect(auth).toContain("Malformed (any payload field or the signature's form included), stale, replayed or misaimed\n  requests are 401.");
    const payload = { aud: "http://127.0.0.1:8080", method: "GET", uri: "/x", bodyHash: `sha256:${"0".repeat(64)}`, iat: 1, exp: 2, nonce: "short" };
    const header = `Web3Signed ${Buffer.from(JSON.stringify(payload)).toString("base64url")}.0x${"00".repeat(64)}1b`;
    const refused = await verifyWeb3Signed(header, {
      audiences: acceptedAudiences(undefined, 8080),
      method: "GET",
      target: "/x",
      bodyHash: payload.bodyHash,
      now: 1,
      nonces: new NonceCache(),
    }).catch((error: { code: keyof typeof ERROR_STATUS }) => error);
    expect([row?.[1], Number(row?.[2])]).toEqual([(refused as { code: string }).code, ERROR_STATUS[(refused as { code: keyof typeof ERROR_STATUS }).code]]);
    expect(ERROR_STATUS.unauthenticated).toBe(401);
  });
});

describe("docs/http-api.md worked example", () => {
  const key = grab(/private key: `(0x[0-9a-f]{64})`/) as `0x${string}`;
  const address = grab(/its address: `(0x[0-9a-fA-F]{40})`/);
  const text = grab(/```json\n(.+)\n```/);
  const encoded = grab(/```\n([A-Za-z0-9_-]{100,})\n```/);
  const signature = grab(/```\n(0x[0-9a-f]{130})\n```/) as `0x${string}`;
  const header = grab(/```\nAuthorization: (Web3Signed .+)\n```/);

  it("is self-consistent and reproduced by viem", async () => {
    const account = privateKeyToAccount(key);
    expect(account.address).toBe(address);
    expect(Buffer.from(text).toString("base64url")).toBe(encoded);
    expect(example).toContain(`"\\x19Ethereum Signed Message:\\n" + "${Buffer.byteLength(text)}" + text`);
    expect(await account.signMessage({ message: text })).toBe(signature);
    expect(await recoverMessageAddress({ message: text, signature })).toBe(address);
    expect(header).toBe(`Web3Signed ${encoded}.${signature}`);
    expect(await web3SignedAuthorization(account, JSON.parse(text) as Record<string, unknown>)).toBe(header);
  });

  it("verifies on a server at http://127.0.0.1:8080 while it is fresh, and is refused once expired", async () => {
    const payload = JSON.parse(text) as { uri: string; iat: number; exp: number };
    const request = (now: number) => ({
      audiences: acceptedAudiences(undefined, 8080),
      method: "GET",
      target: payload.uri,
      bodyHash: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      now,
      nonces: new NonceCache(),
    });
    const verified = await verifyWeb3Signed(header, request(payload.iat + 1));
    expect(verified.address).toBe(address);
    await expect(verifyWeb3Signed(header, request(Math.floor(Date.now() / 1000)))).rejects.toMatchObject({
      code: "unauthenticated",
      message: "Web3Signed payload has expired",
    });
  });
});
