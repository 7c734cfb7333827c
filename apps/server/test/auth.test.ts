// Web3Signed negatives over real HTTP on local storage and on moto (storage plays no part in
// them, so not on the R2 simulator too): every way a grantee request can be stale, replayed,
// malformed or aimed elsewhere is 401; a valid signature by someone else is 403.
import { providerSigner, signRequest as browserSignRequest, type Eip1193Provider } from "@personal-server/artifacts/browser";
import { bodyHash, newNonce, web3SignedAuthorization, type MessageSigner, type Web3SignedPayload } from "@personal-server/artifacts/client";
import { recoverMessageAddress } from "viem/utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WRITER_TOKEN, errorBody, rawRequest, startTestServer, wallet, type TestServer } from "./helpers.js";

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** The other spellings of a valid 65-byte signature that recover the same signer: high s (v flipped), v as 0/1, and both. */
function sloppyForms(signature: `0x${string}`): { highS: `0x${string}`; v01: `0x${string}`; both: `0x${string}` } {
  const r = signature.slice(2, 66);
  const highS = (SECP256K1_N - BigInt(`0x${signature.slice(66, 130)}`)).toString(16).padStart(64, "0");
  const v = Number.parseInt(signature.slice(130), 16);
  const flipped = v === 27 ? 28 : 27;
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  return {
    highS: `0x${r}${highS}${hex(flipped)}`,
    v01: `${signature.slice(0, 130)}${hex(v - 27)}` as `0x${string}`,
    both: `0x${r}${highS}${hex(flipped - 27)}`,
  };
}

describe.each(["local", "moto"] as const)("Web3Signed on %s storage", (kind) => {
  let s: TestServer;
  const grantee = wallet();
  let id: string;
  let target: string;
  beforeAll(async () => {
    s = await startTestServer(kind);
    id = (await s.writer.createOperation({ grantee: grantee.address, agent: "auth" })).operationId;
    await s.writer.upload(id, "notes.txt", "for the grantee only", { contentType: "text/plain" });
    target = `/api/v1/operations/${id}/artifacts/notes.txt`;
  });
  afterAll(async () => {
    await s?.close();
  });

  const now = () => Math.floor(Date.now() / 1000);
  const payload = (over: Partial<Web3SignedPayload> = {}): Web3SignedPayload => ({
    aud: s.url,
    method: "GET",
    uri: target,
    bodyHash: bodyHash(""),
    iat: now(),
    exp: now() + 60,
    nonce: newNonce(),
    ...over,
  });
  const get = (authorization: string, t = target, method = "GET") => rawRequest(s.url, method, t, { authorization });
  const expect401 = async (authorization: string, message: string, t = target) => {
    const res = await get(authorization, t);
    expect({ status: res.status, body: res.json }).toEqual({ status: 401, body: errorBody("unauthenticated", message) });
    expect(res.headers["www-authenticate"]).toBe("Web3Signed, Bearer");
  };

  it("a correctly signed request is answered", async () => {
    const res = await get(await web3SignedAuthorization(grantee, payload()));
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe("for the grantee only");
    // localhost is the other spelling of the default audience.
    const port = new URL(s.url).port;
    const viaLocalhost = await get(await web3SignedAuthorization(grantee, payload({ aud: `http://localhost:${port}` })));
    expect(viaLocalhost.status).toBe(200);
  });

  it("stale or not yet valid: expired, iat in the future, exp - iat > 300, exp <= iat", async () => {
    const t = now();
    await expect401(await web3SignedAuthorization(grantee, payload({ iat: t - 400, exp: t - 100 })), "Web3Signed payload has expired");
    await expect401(await web3SignedAuthorization(grantee, payload({ iat: t - 60, exp: t - 1 })), "Web3Signed payload has expired");
    await expect401(await web3SignedAuthorization(grantee, payload({ iat: t + 100, exp: t + 160 })), "Web3Signed iat is in the future");
    await expect401(await web3SignedAuthorization(grantee, payload({ iat: t, exp: t + 301 })), "Web3Signed exp - iat must be between 1 and 300 seconds");
    await expect401(await web3SignedAuthorization(grantee, payload({ iat: t, exp: t })), "Web3Signed exp - iat must be between 1 and 300 seconds");
    await expect401(await web3SignedAuthorization(grantee, payload({ iat: t + 10, exp: t + 5 })), "Web3Signed exp - iat must be between 1 and 300 seconds");
    // Exactly 300 s and a small clock skew are fine.
    expect((await get(await web3SignedAuthorization(grantee, payload({ iat: t, exp: t + 300 })))).status).toBe(200);
    expect((await get(await web3SignedAuthorization(grantee, payload({ iat: t + 20, exp: t + 80 })))).status).toBe(200);
  });

  it("misaimed: wrong aud, method, uri, query, bodyHash", async () => {
    await expect401(await web3SignedAuthorization(grantee, payload({ aud: "http://127.0.0.1:1" })), "Web3Signed aud is not this server's audience");
    await expect401(await web3SignedAuthorization(grantee, payload({ aud: `${s.url}/` })), "Web3Signed aud is not this server's audience");
    await expect401(await web3SignedAuthorization(grantee, payload({ method: "HEAD" })), "Web3Signed method does not match the request method");
    await expect401(await web3SignedAuthorization(grantee, payload({ method: "get" })), "Web3Signed method does not match the request method");
    await expect401(
      await web3SignedAuthorization(grantee, payload({ uri: `/api/v1/operations/${id}/artifacts` })),
      "Web3Signed uri does not match the request target",
    );
    await expect401(await web3SignedAuthorization(grantee, payload()), "Web3Signed uri does not match the request target", `${target}?x=1`);
    // The raw target is compared byte for byte: a decoded or re-encoded spelling is another target.
    await expect401(
      await web3SignedAuthorization(grantee, payload({ uri: target.replace("notes", "%6eotes") })),
      "Web3Signed uri does not match the request target",
    );
    await expect401(await web3SignedAuthorization(grantee, payload({ bodyHash: bodyHash("x") })), "Web3Signed bodyHash does not match the request body");
    // A query the client signed is fine.
    const withQuery = `${target}?download=1`;
    expect((await get(await web3SignedAuthorization(grantee, payload({ uri: withQuery })), withQuery)).status).toBe(200);
  });

  it("a replayed nonce is refused, also concurrently; a stranger's is never spent", async () => {
    const header = await web3SignedAuthorization(grantee, payload());
    expect((await get(header)).status).toBe(200);
    await expect401(header, "Web3Signed nonce was already used");

    // A different payload reusing a spent nonce is refused too.
    const spent = newNonce();
    expect((await get(await web3SignedAuthorization(grantee, payload({ nonce: spent })))).status).toBe(200);
    await expect401(await web3SignedAuthorization(grantee, payload({ nonce: spent, exp: now() + 90 })), "Web3Signed nonce was already used");

    const twice = await web3SignedAuthorization(grantee, payload());
    const answers = await Promise.all([get(twice), get(twice), get(twice)]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 401, 401]);

    // Only the grantee's nonces are spent: a stranger's signature stays the same 404 however often it
    // is sent (each send counts against the client's failure budget, docs/http-api.md#rate-limit).
    const stranger = wallet();
    const theirs = await web3SignedAuthorization(stranger, payload());
    for (let i = 0; i < 2; i++) {
      const answer = await get(theirs);
      expect({ status: answer.status, body: answer.json }).toEqual({ status: 404, body: errorBody("not_found", `operation ${id} not found or not shared with this wallet`) });
    }
  });

  it("garbage and malformed headers are 401", async () => {
    const good = await web3SignedAuthorization(grantee, payload());
    const [encoded, signature] = good.slice("Web3Signed ".length).split(".") as [string, string];
    const encode = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
    const shape = "Authorization must be Web3Signed <base64url payload>.<0x-hex 65-byte signature>";
    const cases: [string, string][] = [
      ["Web3Signed", shape],
      ["Web3Signed garbage", shape],
      [`Web3Signed ${encoded}`, shape],
      [`Web3Signed ${encoded}.0x1234`, shape],
      [`Web3Signed ${encoded}.${signature.slice(2)}`, shape],
      [`Web3Signed  ${encoded}.${signature}`, shape],
      [`Web3Signed ${encoded}=.${signature}`, shape],
      [`Bearer ${WRITER_TOKEN}`, shape],
      [`Basic ${Buffer.from("a:b").toString("base64")}`, shape],
      [`Web3Signed ${encoded.slice(0, 10)}+${encoded.slice(11)}.${signature}`, shape],
      [`Web3Signed ${encoded.slice(0, 10)}/${encoded.slice(11)}.${signature}`, shape],
      [`Web3Signed ${encode("not json")}.${signature}`, "Web3Signed payload is not UTF-8 JSON"],
      [`Web3Signed ${Buffer.from([0xff, 0xfe, 0x7b]).toString("base64url")}.${signature}`, "Web3Signed payload is not UTF-8 JSON"],
      [`Web3Signed ${encode([1, 2])}.${signature}`, "Web3Signed payload must be a JSON object"],
      [`Web3Signed ${encode({ ...payload(), extra: 1 })}.${signature}`, "Web3Signed payload must have exactly the fields aud, bodyHash, exp, iat, method, nonce, uri"],
      [`Web3Signed ${encode({ aud: s.url, method: "GET", uri: target })}.${signature}`, "Web3Signed payload must have exactly the fields aud, bodyHash, exp, iat, method, nonce, uri"],
      [`Web3Signed ${encode(payload({ nonce: "short" }))}.${signature}`, "Web3Signed nonce must be at least 16 random bytes, base64url"],
      [`Web3Signed ${encode(payload({ nonce: "a".repeat(21) }))}.${signature}`, "Web3Signed nonce must be at least 16 random bytes, base64url"],
      [`Web3Signed ${encode(payload({ iat: "1" as unknown as number }))}.${signature}`, "Web3Signed iat and exp must be integers (unix seconds)"],
      [`Web3Signed ${encode(payload({ exp: 1.5 }))}.${signature}`, "Web3Signed iat and exp must be integers (unix seconds)"],
      [`Web3Signed ${encode(payload({ bodyHash: "sha256:ABC" }))}.${signature}`, "Web3Signed bodyHash must be sha256:<64 lower-case hex>"],
      [`Web3Signed ${encode({ ...payload(), aud: 5 })}.${signature}`, "Web3Signed aud, method and uri must be strings"],
      [`Web3Signed ${encoded}.0x${"00".repeat(64)}1b`, "Web3Signed signature is invalid"],
    ];
    for (const [authorization, message] of cases) {
      const res = await get(authorization);
      expect({ authorization, status: res.status, body: res.json }).toEqual({ authorization, status: 401, body: errorBody("unauthenticated", message) });
    }
    const none = await rawRequest(s.url, "GET", target);
    expect({ status: none.status, body: none.json }).toEqual({
      status: 401,
      body: errorBody("unauthenticated", "missing Authorization: Web3Signed <payload>.<signature>"),
    });
  });

  it("one accepted byte form: a BOM, a repeated field, a high-s twin or v 0/1 is 401 though the signature verifies; the clients send the accepted form", async () => {
    const header = (text: string, signature: string) => `Web3Signed ${Buffer.from(text).toString("base64url")}.${signature}`;
    const sign = (text: string) => grantee.signMessage({ message: text });
    const bom = `\uFEFF${JSON.stringify(payload())}`;
    await expect401(header(bom, await sign(bom)), "Web3Signed payload is not UTF-8 JSON");
    const twice = `{"aud":"https://elsewhere.example",${JSON.stringify(payload()).slice(1)}`;
    expect(JSON.parse(twice).aud).toBe(s.url);
    await expect401(header(twice, await sign(twice)), 'Web3Signed payload has the field "aud" twice');

    const text = JSON.stringify(payload());
    const signature = await sign(text);
    const twins = sloppyForms(signature);
    for (const twin of [twins.highS, twins.v01]) {
      expect(await recoverMessageAddress({ message: text, signature: twin })).toBe(grantee.address);
    }
    await expect401(header(text, twins.highS), "Web3Signed signature has a high s (EIP-2): send the low-s form");
    await expect401(header(text, twins.v01), `Web3Signed signature must end in v = 27 or 28 (1b or 1c), not ${Number.parseInt(twins.v01.slice(-2), 16)}`);
    // Refused before recovery, so the nonce is unspent: the accepted form of the same request is served.
    expect((await get(header(text, signature))).status).toBe(200);

    // A wallet that answers v 0/1 or a high s: the Node and the browser clients send the accepted form.
    for (const form of ["highS", "v01", "both"] as const) {
      const wallet: MessageSigner = { address: grantee.address, signMessage: async (args) => sloppyForms(await grantee.signMessage(args))[form] };
      expect((await get(await web3SignedAuthorization(wallet, payload()))).status, form).toBe(200);
      const provider: Eip1193Provider = {
        request: async ({ params }) => sloppyForms(await grantee.signMessage({ message: { raw: params![0] as `0x${string}` } }))[form],
      };
      expect((await get(await browserSignRequest(providerSigner(provider, grantee.address), { audience: s.url, method: "GET", uri: target }))).status, form).toBe(200);
    }
  });

  it("another wallet's valid signature is 404 (a missing operation's answer); so is a payload altered after signing (another signer)", async () => {
    const stranger = wallet();
    const res = await get(await web3SignedAuthorization(stranger, payload()));
    expect({ status: res.status, body: res.json }).toEqual({ status: 404, body: errorBody("not_found", `operation ${id} not found or not shared with this wallet`) });
    const list = `/api/v1/operations/${id}/artifacts`;
    const listed = await get(await web3SignedAuthorization(stranger, payload({ uri: list })), list);
    expect(listed.status).toBe(404);

    // The grantee's signature over other text recovers some other address: not the grantee, so 404.
    const signed = await web3SignedAuthorization(grantee, payload());
    const signature = signed.split(".")[1]!;
    const altered = `Web3Signed ${Buffer.from(JSON.stringify(payload())).toString("base64url")}.${signature}`;
    expect((await get(altered)).status).toBe(404);
  });

  it("no token, key or signature reaches the logs", async () => {
    const header = await web3SignedAuthorization(grantee, payload());
    await get(header);
    await rawRequest(s.url, "PUT", `/api/v1/operations/${id}/artifacts/x.txt`, { authorization: `Bearer ${WRITER_TOKEN}` }, "x");
    await rawRequest(s.url, "GET", "/api/v1/operations", { authorization: `Bearer ${WRITER_TOKEN}`, cookie: "session=obviously-fake-cookie" });
    const logs = s.logs.join("");
    expect(logs).toContain("incoming request");
    expect(logs).not.toContain(WRITER_TOKEN);
    expect(logs).not.toContain(header.split(".")[1]!.slice(2, 40));
    expect(logs).not.toContain("Web3Signed ey");
    expect(logs).not.toContain("obviously-fake-cookie");
    expect(logs).not.toContain(s.config.masterKeys.keys.get("default")!.toString("base64"));
  });
});
