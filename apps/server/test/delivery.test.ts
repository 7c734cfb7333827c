// Direct delivery, the protocol (docs/http-api.md#direct-delivery): ticket routes with the checks of a
// download, the local delivery route's one 403, presigned URLs on S3 (moto), metrics and logs.
// The Node client's direct downloads are in client-direct.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KINDS, errorBody, patternBytes, rawRequest, signedFor, startTestServer, storageKind, wallet, type TestServer } from "./helpers.js";

interface Ticket {
  url: string;
  urlExpiresAt: string;
  key: string;
  format: { version: number; chunkSize: number };
  size: number;
  encryptedSize: number;
  etag: string;
  contentType: string;
}

const MiB = 1024 * 1024;

describe.each(KINDS)("direct delivery tickets on %s storage", (kind) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(kind);
  });
  afterAll(async () => {
    await s?.close();
  });

  const ask = async (target: string, who = wallet(), method = "GET", auth = true) =>
    rawRequest(s.url, method, target, auth ? { authorization: await signedFor(s, who, method, target) } : {});
  const ticketFor = async (id: string, path: string, who: ReturnType<typeof wallet>) => {
    const res = await ask(`/api/v1/operations/${id}/artifacts/${path}?delivery=direct`, who);
    expect(res.status, res.body.toString()).toBe(200);
    return { res, ticket: res.json as Ticket };
  };
  const newOperation = async (ttlSeconds?: number) => {
    const grantee = wallet();
    const op = await s.writer.createOperation({ grantee: grantee.address, ...(ttlSeconds ? { ttlSeconds } : {}) });
    return { grantee, id: op.operationId, op };
  };

  it("a ticket has the documented fields, no-store, and a URL that serves exactly the ciphertext", async () => {
    const { grantee, id, op } = await newOperation();
    const data = patternBytes(MiB + 5, 3);
    const uploaded = await s.writer.upload(id, "dir/data.bin", data, { contentType: "application/x-test" });
    const before = Date.now();
    const { res, ticket } = await ticketFor(id, "dir/data.bin", grantee);
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(Object.keys(ticket).sort()).toEqual(["contentType", "encryptedSize", "etag", "format", "key", "size", "url", "urlExpiresAt"]);
    expect(ticket).toMatchObject({
      format: { version: 1, chunkSize: MiB },
      size: data.length,
      encryptedSize: 41 + data.length + 2 * 16,
      contentType: "application/x-test",
    });
    expect(ticket.key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const expires = Date.parse(ticket.urlExpiresAt);
    expect(expires).toBeGreaterThan(before);
    expect(expires).toBeLessThanOrEqual(before + 300_000 + 1000);
    expect(expires).toBeLessThanOrEqual(Date.parse(op.expiresAt));
    if (kind === "local") expect(ticket.url.startsWith(`${s.url}/api/v1/delivery/${id}/dir/data.bin?`)).toBe(true);
    else {
      // moto checks neither signatures nor expiry: assert what the URL asks storage to enforce
      // (the R2 simulator's refusals are below).
      const q = new URL(ticket.url).searchParams;
      expect(q.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
      expect(Number(q.get("X-Amz-Expires"))).toBeGreaterThan(0);
      expect(Number(q.get("X-Amz-Expires"))).toBeLessThanOrEqual(300);
      expect(ticket.url).not.toContain(s.config.storage.kind === "s3" ? s.config.storage.secretAccessKey : "?");
    }
    // The stored object, as the raw backend has it, is what the URL serves (no credentials).
    const stored = await s.raw.getBytes(`operations/${id}/artifacts/dir/data.bin`);
    const fetched = await fetch(ticket.url);
    expect(fetched.status).toBe(200);
    expect(fetched.headers.get("etag")).toBe(`"${ticket.etag}"`);
    expect(Buffer.from(await fetched.arrayBuffer()).equals(stored!.body)).toBe(true);
    expect(ticket.etag).toBe(stored!.etag);
    expect(uploaded.size).toBe(data.length);
    // Range on the URL: the second chunk's tag and the end of the object.
    const ranged = await fetch(ticket.url, { headers: { range: `bytes=${ticket.encryptedSize - 20}-` } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-range")).toBe(`bytes ${ticket.encryptedSize - 20}-${ticket.encryptedSize - 1}/${ticket.encryptedSize}`);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(stored!.body.subarray(-20))).toBe(true);
  });

  it("the ticket route makes the checks of a download in the same order; other queries are 400", async () => {
    const { grantee, id } = await newOperation();
    await s.writer.upload(id, "a.txt", "abc");
    const stranger = wallet();
    const t = (op: string, path: string, q = "delivery=direct") => `/api/v1/operations/${op}/artifacts/${path}?${q}`;
    const expectAnswer = async (p: ReturnType<typeof ask>, status: number, code: string) => {
      const res = await p;
      expect({ status: res.status, code: (res.json as { error?: { code?: string } }).error?.code }).toEqual({ status, code });
    };
    await expectAnswer(ask(t("bad%20id", "a.txt"), grantee, "GET", false), 401, "unauthenticated");
    await expectAnswer(ask(t("bad%20id", "a.txt"), grantee), 400, "invalid_input");
    await expectAnswer(ask(t(id, "./a.txt"), grantee), 400, "invalid_input");
    for (const q of ["delivery=proxied", "delivery=direct&x=1", "x=1&delivery=direct", "delivery=DIRECT", "delivery", "delivery=direct&delivery=direct"]) {
      await expectAnswer(ask(t(id, "a.txt", q), grantee), 400, "invalid_input");
      await expectAnswer(ask(`/api/v1/operations/${id}/artifacts?${q}`, grantee), 400, "invalid_input");
    }
    expect((await ask(t(id, "a.txt"), grantee, "HEAD")).status).toBe(400);
    await expectAnswer(ask(t("missing_op", "a.txt"), grantee), 404, "not_found");
    // Whatever the store answers a non-grantee for a download (403 today), it answers for a ticket.
    const download = await ask(`/api/v1/operations/${id}/artifacts/a.txt`, stranger);
    const ticket = await ask(t(id, "a.txt"), stranger);
    expect({ status: ticket.status, body: ticket.json }).toEqual({ status: download.status, body: download.json });
    await expectAnswer(ask(t(id, "nope.txt"), grantee), 404, "not_found");
    const saved = s.clock.now;
    s.clock.now = new Date(Date.now() + 8 * 86_400_000);
    try {
      await expectAnswer(ask(t(id, "a.txt"), grantee), 410, "expired");
      await expectAnswer(ask(`/api/v1/operations/${id}/artifacts?delivery=direct`, grantee), 410, "expired");
    } finally {
      s.clock.now = saved;
    }
    // The proxied download is unchanged and still the default (other queries ignored, as before).
    for (const target of [`/api/v1/operations/${id}/artifacts/a.txt`, `/api/v1/operations/${id}/artifacts/a.txt?download=1`]) {
      const proxied = await ask(target, grantee);
      expect({ status: proxied.status, body: proxied.body.toString() }).toEqual({ status: 200, body: "abc" });
    }
  });

  it("one signed request lists every artifact with its own ticket", async () => {
    const { grantee, id } = await newOperation();
    await s.writer.upload(id, "b.txt", "bee");
    await s.writer.upload(id, "a/x.bin", patternBytes(100, 9));
    await s.writer.upload(id, "empty", "");
    const res = await ask(`/api/v1/operations/${id}/artifacts?delivery=direct`, grantee);
    expect(res.status).toBe(200);
    expect(res.headers["cache-control"]).toBe("no-store");
    const listing = res.json as { operationId: string; expiresAt: string; artifacts: { path: string; size: number; etag: string; ticket: Ticket }[] };
    expect(listing.operationId).toBe(id);
    expect(listing.artifacts.map((a) => a.path)).toEqual(["a/x.bin", "b.txt", "empty"]);
    expect(listing.artifacts.map((a) => a.ticket.size)).toEqual([100, 3, 0]);
    expect(new Set(listing.artifacts.map((a) => a.ticket.key)).size).toBe(3);
    for (const a of listing.artifacts) {
      const body = Buffer.from(await (await fetch(a.ticket.url)).arrayBuffer());
      expect(body.length).toBe(a.ticket.encryptedSize);
      expect(body.subarray(0, 4).toString("latin1")).toBe("PSAE");
    }
  });

  it("in the ticket listing an artifact whose stored object is missing carries its error; the others keep their tickets", async () => {
    const { grantee, id } = await newOperation();
    await s.writer.upload(id, "a.txt", "abc");
    await s.writer.upload(id, "b.txt", "bee");
    await s.writer.upload(id, "c.txt", "sea");
    await s.raw.delete([`operations/${id}/artifacts/b.txt`]);
    const res = await ask(`/api/v1/operations/${id}/artifacts?delivery=direct`, grantee);
    expect(res.status, res.body.toString()).toBe(200);
    const listing = res.json as { artifacts: { path: string; ticket?: Ticket; error?: unknown }[] };
    expect(listing.artifacts.map((a) => [a.path, a.ticket === undefined ? a.error : a.ticket.size])).toEqual([
      ["a.txt", 3],
      ["b.txt", { code: "integrity", message: "object of b.txt is missing" }],
      ["c.txt", 3],
    ]);
    expect(Buffer.from(await (await fetch(listing.artifacts[2]!.ticket!.url)).arrayBuffer()).length).toBe(listing.artifacts[2]!.ticket!.encryptedSize);
    // The Node client hands over the same, checked.
    const viaClient = await s.grantee(grantee).tickets(id);
    expect(viaClient.artifacts.map((a) => a.error?.code ?? "ticket")).toEqual(["ticket", "integrity", "ticket"]);
    expect(s.logs.some((line) => line.includes(id) && line.includes("object of b.txt is missing"))).toBe(true);
    // The single ticket still says what is wrong with that artifact.
    expect((await ask(`/api/v1/operations/${id}/artifacts/b.txt?delivery=direct`, grantee)).status).toBe(500);
  });

  it("urlExpiresAt never passes the operation's expiry", async () => {
    const { grantee, id, op } = await newOperation(20);
    await s.writer.upload(id, "a.txt", "abc");
    const { ticket } = await ticketFor(id, "a.txt", grantee);
    expect(Date.parse(ticket.urlExpiresAt)).toBeLessThanOrEqual(Date.parse(op.expiresAt));
    expect(Date.parse(ticket.urlExpiresAt)).toBeGreaterThan(Date.parse(op.expiresAt) - 2000);
    if (kind !== "local") expect(Number(new URL(ticket.url).searchParams.get("X-Amz-Expires"))).toBeLessThanOrEqual(20);
  });

  it("counts tickets by storage in /metrics", async () => {
    const { grantee, id } = await newOperation();
    await s.writer.upload(id, "a.txt", "abc");
    const count = async () => {
      const text = await fetch(s.metricsUrl).then((r) => r.text());
      return Number(new RegExp(`^artifacts_delivery_tickets_total\\{storage="${storageKind(kind)}"\\} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    };
    const before = await count();
    await ticketFor(id, "a.txt", grantee);
    await ask(`/api/v1/operations/${id}/artifacts?delivery=direct`, grantee);
    expect(await count()).toBe(before + 2);
  });
});

describe("local delivery URLs", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer("local");
  });
  afterAll(async () => {
    await s?.close();
  });

  const issue = async (path = "data.bin", body: Buffer | string = patternBytes(70_000, 5)) => {
    const grantee = wallet();
    const { operationId: id } = await s.writer.createOperation({ grantee: grantee.address });
    await s.writer.upload(id, path, body);
    const target = `/api/v1/operations/${id}/artifacts/${path}?delivery=direct`;
    const res = await rawRequest(s.url, "GET", target, { authorization: await signedFor(s, grantee, "GET", target) });
    expect(res.status).toBe(200);
    const ticket = res.json as Ticket;
    const url = new URL(ticket.url);
    return { id, grantee, ticket, target: `${url.pathname}${url.search}` };
  };
  const refusal = errorBody("forbidden", "delivery URL is invalid or has expired; ask for a new ticket");

  it("serves HEAD, GET and single ranges of the ciphertext, and never the query to the logs", async () => {
    const { id, ticket, target } = await issue();
    const head = await rawRequest(s.url, "HEAD", target);
    expect(head.status).toBe(200);
    expect(head.headers["content-length"]).toBe(String(ticket.encryptedSize));
    expect(head.headers.etag).toBe(`"${ticket.etag}"`);
    // HEAD with Range answers as GET would, without the body: 206, as S3 and R2 answer a presigned HEAD.
    const headRange = await rawRequest(s.url, "HEAD", target, { range: "bytes=41-100" });
    expect([headRange.status, headRange.headers["content-range"], headRange.headers["content-length"], headRange.body.length]).toEqual([
      206,
      `bytes 41-100/${ticket.encryptedSize}`,
      "60",
      0,
    ]);
    const stored = (await s.raw.getBytes(`operations/${id}/artifacts/data.bin`))!.body;
    const whole = await rawRequest(s.url, "GET", target);
    expect(whole.body.equals(stored)).toBe(true);
    const part = await rawRequest(s.url, "GET", target, { range: "bytes=41-100" });
    expect(part.status).toBe(206);
    expect(part.headers["content-range"]).toBe(`bytes 41-100/${ticket.encryptedSize}`);
    expect(part.body.equals(stored.subarray(41, 101))).toBe(true);
    const suffix = await rawRequest(s.url, "GET", target, { range: "bytes=-16" });
    expect(suffix.body.equals(stored.subarray(-16))).toBe(true);
    const past = await rawRequest(s.url, "GET", target, { range: `bytes=${ticket.encryptedSize}-` });
    expect(past.status).toBe(416);
    const sig = new URL(ticket.url).searchParams.get("sig")!;
    expect(s.logs.some((line) => line.includes("/api/v1/delivery/") && line.includes("?[redacted]"))).toBe(true);
    expect(s.logs.some((line) => line.includes(sig) || line.includes(ticket.key))).toBe(false);
  });

  it("bad, expired or unknown URLs all get one identical 403, whatever was changed", async () => {
    const { id, ticket, target } = await issue();
    const other = await issue("other.bin", "other bytes");
    const url = new URL(ticket.url, s.url);
    const q = url.searchParams;
    const exp = q.get("exp")!;
    const etag = q.get("etag")!;
    const sig = q.get("sig")!;
    const flip = (text: string) => (text[0] === "A" ? "B" : "A") + text.slice(1);
    // The same 32 bytes spelled otherwise: the last of 43 characters carries 2 unused bits.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const respelled = sig.slice(0, 42) + alphabet[alphabet.indexOf(sig[42]!) + 1];
    expect(Buffer.from(respelled, "base64url").equals(Buffer.from(sig, "base64url"))).toBe(true);
    const variants = [
      `${url.pathname}?exp=${Number(exp) + 1}&etag=${etag}&sig=${sig}`,
      `${url.pathname}?exp=${exp}&etag=${flip(etag)}&sig=${sig}`,
      `${url.pathname}?exp=${exp}&etag=${etag}&sig=${flip(sig)}`,
      `${url.pathname}?exp=${exp}&etag=${etag}&sig=${sig.slice(1)}`,
      `${url.pathname}?exp=${exp}&etag=${etag}&sig=${respelled}`,
      `${url.pathname}?exp=${exp}&etag=${etag}&sig=${sig}&x=1`,
      `${url.pathname}?sig=${sig}&exp=${exp}&etag=${etag}`,
      url.pathname,
      `/api/v1/delivery/${id}/other.bin${url.search}`,
      `/api/v1/delivery/${other.id}/data.bin${url.search}`,
      `/api/v1/delivery/${id}/../${id}/data.bin${url.search}`,
      `/api/v1/delivery/${id}/data%2ebin${url.search}`,
      `/api/v1/delivery/${id}${url.search}`,
      `/api/v1/delivery/..%2f.master-key${url.search}`,
      `/api/v1/delivery/${id}/metadata.json${url.search}`,
    ];
    for (const variant of variants) {
      for (const method of ["GET", "HEAD"]) {
        const res = await rawRequest(s.url, method, variant);
        expect({ variant, method, status: res.status }).toEqual({ variant, method, status: 403 });
        if (method === "GET") expect(res.json).toEqual(refusal);
      }
    }
    expect((await rawRequest(s.url, "GET", target)).status).toBe(200);
    // Past its lifetime (the store's clock moved), then gone with its operation.
    const saved = s.clock.now;
    s.clock.now = new Date(Date.parse(ticket.urlExpiresAt) + 1000);
    try {
      const late = await rawRequest(s.url, "GET", target);
      expect({ status: late.status, body: late.json }).toEqual({ status: 403, body: refusal });
    } finally {
      s.clock.now = saved;
    }
    await s.writer.deleteOperation(id);
    const gone = await rawRequest(s.url, "GET", target);
    expect({ status: gone.status, body: gone.json }).toEqual({ status: 403, body: refusal });
    expect((await rawRequest(s.url, "GET", other.target)).status).toBe(200);
  });
});

describe("presigned ticket URLs on the R2 simulator (it checks signatures and expiry; moto checks neither)", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer("r2sim");
  });
  afterAll(async () => {
    await s?.close();
  });

  const ticketFor = async (grantee: ReturnType<typeof wallet>, id: string) => {
    const target = `/api/v1/operations/${id}/artifacts/a.bin?delivery=direct`;
    const res = await rawRequest(s.url, "GET", target, { authorization: await signedFor(s, grantee, "GET", target) });
    expect(res.status, res.body.toString()).toBe(200);
    return res.json as Ticket;
  };

  // Other tampering (another key, a changed signature) is packages/artifacts/test/backend-r2sim.test.ts's.
  it("a ticket's URL reads the ciphertext; past its lifetime or stretched it is refused (403)", async () => {
    const grantee = wallet();
    const { operationId: id } = await s.writer.createOperation({ grantee: grantee.address });
    await s.writer.upload(id, "a.bin", patternBytes(50_000, 2));
    const fresh = await ticketFor(grantee, id);
    const ok = await fetch(fresh.url, { headers: { range: "bytes=0-40" } });
    expect(ok.status).toBe(206);
    expect(Buffer.from(await ok.arrayBuffer()).subarray(0, 4).toString("latin1")).toBe("PSAE");

    // Issued by a server whose clock says an hour ago: the URL's 300 s are long over.
    const saved = s.clock.now;
    s.clock.now = new Date(Date.now() - 3600_000);
    const stale = await ticketFor(grantee, id).finally(() => {
      s.clock.now = saved;
    });
    const expired = await fetch(stale.url);
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain("<Code>ExpiredRequest</Code>");

    // A grantee cannot stretch a URL's lifetime: the expiry is under the signature.
    const longer = new URL(fresh.url);
    longer.searchParams.set("X-Amz-Expires", "604800");
    const stretched = await fetch(longer);
    expect(stretched.status).toBe(403);
    await stretched.arrayBuffer();
  });
});
