// The worked Web3Signed example of docs/http-api.md must stay reproducible: its text, encoding, signature and
// header agree with each other, with viem, and with the server's verifier.
import { readFileSync } from "node:fs";
import { web3SignedAuthorization } from "@personal-server/artifacts/client";
import { privateKeyToAccount } from "viem/accounts";
import { recoverMessageAddress } from "viem/utils";
import { describe, expect, it } from "vitest";
import { NonceCache } from "../src/auth/nonce-cache.js";
import { acceptedAudiences, verifyWeb3Signed } from "../src/auth/web3signed.js";

const doc = readFileSync(new URL("../../../docs/http-api.md", import.meta.url), "utf8");
const example = doc.slice(doc.indexOf("### Worked example"), doc.indexOf("## Clients"));
const grab = (pattern: RegExp): string => {
  const match = pattern.exec(example);
  if (match === null) throw new Error(`docs/http-api.md worked example lacks ${pattern}`);
  return match[1]!;
};

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
