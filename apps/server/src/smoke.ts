// `pnpm smoke`: an end-to-end run against a running server, as an agent and its grantee would use
// it, access checks included.
// BASE_URL (default http://127.0.0.1:8080); the writer token from ARTIFACTS_WRITER_TOKEN or the dev
// token file the server generated (<ARTIFACTS_LOCAL_DIR>/.writer-token). Exits non-zero on any mismatch.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ArtifactError, WRITER_TOKEN_FILE, loadConfig } from "@personal-server/artifacts";
import {
  createGranteeClient,
  createWriterClient,
  newNonce,
  bodyHash,
  serverLocation,
  signRequest,
  web3SignedAuthorization,
  type MessageSigner,
} from "@personal-server/artifacts/client";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

const PRIVACY_AUDIT = `# Privacy audit

Operation run by the gemini agent for its grantee.

## Findings
- 3 accounts share the same recovery e-mail address.
- Location history is enabled on 2 devices and retained indefinitely.
- 14 third-party apps hold read access to the mailbox; 5 were last used over a year ago.

## Risk summary
Overall exposure: **medium**. Nothing here is public, but revoking stale grants removes most of it.
`;

const RECOMMENDATIONS = `Recommendations
1. Revoke mailbox access for the 5 apps unused for over a year.
2. Set location history to auto-delete after 3 months.
3. Give each account its own recovery address.
4. Re-run this audit in 90 days.
`;

interface Check {
  ok: boolean;
  text: string;
}

function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

function writerToken(): string {
  const config = loadConfig();
  if (config.writerToken !== undefined) return config.writerToken;
  const path = join(config.localDir, WRITER_TOKEN_FILE);
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    throw new Error(
      `no writer token: set ARTIFACTS_WRITER_TOKEN, or start the server with local storage first (it writes ${path})`,
    );
  }
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Runs the smoke checks against `baseUrl`; returns the checks in order (all ok = pass). */
export async function runSmoke(baseUrl: string, token: string, log: (line: string) => void = () => {}): Promise<Check[]> {
  const checks: Check[] = [];
  const record = (ok: boolean, text: string): boolean => {
    checks.push({ ok, text });
    log(`  ${ok ? "ok  " : "FAIL"} ${text}`);
    return ok;
  };
  const expectError = async (label: string, code: string, action: () => Promise<unknown>): Promise<void> => {
    try {
      await action();
      record(false, `${label}: expected ${code}, but it succeeded`);
    } catch (error) {
      const got = error instanceof ArtifactError ? `${error.status} ${error.code}` : String(error);
      record(error instanceof ArtifactError && error.code === code, `${label}: ${got}${error instanceof ArtifactError ? ` (${error.message})` : ""}`);
    }
  };

  const location = serverLocation(baseUrl);
  const health = await fetch(`${location.audience}/health`);
  const healthBody = (await health.json()) as { status?: string; storage?: string };
  record(health.status === 200 && healthBody.status === "ok", `health: ${health.status} ${JSON.stringify(healthBody)}`);

  const writer = createWriterClient({ baseUrl, token });
  const granteeAccount = privateKeyToAccount(generatePrivateKey());
  const strangerAccount = privateKeyToAccount(generatePrivateKey());
  const grantee = createGranteeClient({ baseUrl, account: granteeAccount });
  const stranger = createGranteeClient({ baseUrl, account: strangerAccount });

  const operationId = `gemini_${Date.now()}`;
  const created = await writer.createOperation({ grantee: granteeAccount.address, operationId, agent: "gemini" });
  record(
    created.operationId === operationId && created.grantee === granteeAccount.address.toLowerCase(),
    `created operation ${created.operationId} for grantee ${created.grantee} (expires ${created.expiresAt})`,
  );
  try {
    const files = [
      { path: "privacy_audit.md", text: PRIVACY_AUDIT, contentType: "text/markdown; charset=utf-8" },
      { path: "recommendations.txt", text: RECOMMENDATIONS, contentType: "text/plain; charset=utf-8" },
    ];
    for (const file of files) {
      const uploaded = await writer.upload(operationId, file.path, file.text, { contentType: file.contentType });
      const size = Buffer.byteLength(file.text);
      record(
        uploaded.path === file.path && uploaded.size === size && uploaded.contentType === file.contentType,
        `uploaded ${uploaded.path}: ${uploaded.size} bytes, ${uploaded.contentType}`,
      );
    }

    const listing = await grantee.list(operationId);
    const listed = listing.artifacts.map((a) => `${a.path} (${a.size} B)`).join(", ");
    record(
      listing.artifacts.length === 2 &&
        files.every((f) => listing.artifacts.some((a) => a.path === f.path && a.size === Buffer.byteLength(f.text))),
      `grantee listed ${listing.artifacts.length} artifacts: ${listed}`,
    );

    for (const file of files) {
      const stream = await grantee.download(operationId, file.path);
      const bytes = await collect(stream);
      const same = sha256(bytes) === sha256(file.text);
      record(
        same && stream.artifact.contentType === file.contentType,
        `grantee downloaded ${file.path}: ${bytes.length} bytes, sha256 ${same ? "matches" : "DIFFERS"}, ${stream.artifact.contentType}`,
      );
    }

    await expectError("another wallet lists", "forbidden", () => stranger.list(operationId));
    await expectError("another wallet downloads", "forbidden", () => stranger.download(operationId, "privacy_audit.md"));

    // A stale signature: correctly signed for this very request, but it expired a minute ago.
    const target = `${location.prefix}/api/v1/operations/${operationId}/artifacts`;
    const now = Math.floor(Date.now() / 1000);
    const stale = await web3SignedAuthorization(granteeAccount as MessageSigner, {
      aud: location.audience,
      method: "GET",
      uri: target,
      bodyHash: bodyHash(""),
      iat: now - 120,
      exp: now - 60,
      nonce: newNonce(),
    });
    const staleAnswer = await fetch(`${location.origin}${target}`, { headers: { authorization: stale } });
    const staleBody = (await staleAnswer.json()) as { error?: { code?: string; message?: string } };
    record(
      staleAnswer.status === 401 && staleBody.error?.code === "unauthenticated",
      `stale signature: ${staleAnswer.status} ${staleBody.error?.code} (${staleBody.error?.message})`,
    );

    // A replayed signature: the same header twice; the nonce is spent by the first use.
    const fresh = await signRequest(granteeAccount, { audience: location.audience, method: "GET", uri: target });
    const first = await fetch(`${location.origin}${target}`, { headers: { authorization: fresh } });
    await first.arrayBuffer();
    const replay = await fetch(`${location.origin}${target}`, { headers: { authorization: fresh } });
    const replayBody = (await replay.json()) as { error?: { code?: string; message?: string } };
    record(
      first.status === 200 && replay.status === 401 && replayBody.error?.code === "unauthenticated",
      `replayed signature: first use ${first.status}, replay ${replay.status} ${replayBody.error?.code} (${replayBody.error?.message})`,
    );
  } finally {
    await writer.deleteOperation(operationId).then(
      () => record(true, `deleted operation ${operationId}`),
      (error: unknown) => record(false, `deleting ${operationId} failed: ${String(error)}`),
    );
  }
  await expectError("grantee lists the deleted operation", "not_found", () => grantee.list(operationId));
  return checks;
}

async function main(): Promise<void> {
  // BASE_URL is this script's own parameter (not server configuration), hence read here.
  const baseUrl = process.env.BASE_URL?.trim() || "http://127.0.0.1:8080";
  console.log(`smoke run against ${baseUrl}`);
  let checks: Check[];
  try {
    checks = await runSmoke(baseUrl, writerToken(), (line) => console.log(line));
  } catch (error) {
    const message = error instanceof ArtifactError ? `${error.code}: ${error.message}` : (error as Error).message;
    console.error(`smoke run FAILED: ${message}`);
    process.exitCode = 1;
    return;
  }
  const failed = checks.filter((c) => !c.ok).length;
  if (failed > 0) {
    console.error(`smoke run FAILED: ${failed} of ${checks.length} checks`);
    process.exitCode = 1;
  } else {
    console.log(`smoke run passed: ${checks.length} checks`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
