import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BENCH_GRANTEE, localStore } from "./src/sdk.js";

const count = Number(process.argv[2] ?? 10000);
const dir = mkdtempSync(join(tmpdir(), "r7-"));
const store = localStore(dir);
const pool = randomBytes(count * 4096);
const op = (await store.createOperation({ grantee: BENCH_GRANTEE, agent: "bench" })).operationId;
let next = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: 32 }, async () => { while (next < count) { const i = next++; await store.putArtifact(op, `f/${i}.bin`, pool.subarray(i * 4096, (i + 1) * 4096)); } }));
const s = (performance.now() - t0) / 1000;
console.log(`${count} in ${s.toFixed(2)} s = ${(count / s).toFixed(0)} files/s`);
await store.close();
rmSync(dir, { recursive: true, force: true });
