/**
 * Row 11's attacker: floods the server with grantee requests whose payload passes every cheap check
 * (audience, method, URI, times, a fresh nonce) but whose signature is 65 random bytes, the kind of
 * request that costs a signature recovery. Runs as its own process, so its CPU is not the measuring
 * client's. Prints `limited` once the server answers it 429 (the steady state: from then on it is
 * refused before any signature work) and, on SIGTERM, `flood <json>` on stderr: the answers before
 * that point and after it, per status.
 *
 * usage: flood-client.ts <base url> <path> <x-forwarded-for> <connections>
 */
import { randomBytes } from "node:crypto";
import { Agent, request } from "node:http";

const [base, path, forwardedFor, connections] = process.argv.slice(2);
if (base === undefined || path === undefined || forwardedFor === undefined) throw new Error("usage: flood-client.ts <base> <path> <xff> <connections>");
const EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const agent = new Agent({ keepAlive: true, maxSockets: Number(connections ?? 16) });
const before: Record<string, number> = {};
const after: Record<string, number> = {};
let limited = false;
let stopping = false;

function garbage(): string {
  const now = Math.floor(Date.now() / 1000);
  const payload = { aud: base, method: "GET", uri: path, bodyHash: EMPTY, iat: now, exp: now + 60, nonce: randomBytes(16).toString("base64url") };
  const v = Math.random() < 0.5 ? "1b" : "1c";
  return `Web3Signed ${Buffer.from(JSON.stringify(payload)).toString("base64url")}.0x${randomBytes(64).toString("hex")}${v}`;
}

function once(): Promise<void> {
  return new Promise((resolve) => {
    const req = request(`${base}${path}`, { agent, headers: { authorization: garbage(), "x-forwarded-for": forwardedFor } }, (res) => {
      res.resume();
      res.once("end", () => {
        const tally = limited ? after : before;
        tally[String(res.statusCode)] = (tally[String(res.statusCode)] ?? 0) + 1;
        if (res.statusCode === 429 && !limited) {
          limited = true;
          process.stdout.write("limited\n");
        }
        resolve();
      });
    });
    req.once("error", () => {
      const tally = limited ? after : before;
      tally.error = (tally.error ?? 0) + 1;
      resolve();
    });
    req.end();
  });
}

async function loop(): Promise<void> {
  while (!stopping) await once();
}

const loops = Array.from({ length: Number(connections ?? 16) }, loop);
process.on("SIGTERM", () => {
  stopping = true;
  void Promise.all(loops).then(() => {
    process.stderr.write(`flood ${JSON.stringify({ before, after })}\n`);
    process.exit(0);
  });
});
