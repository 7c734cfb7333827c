import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// One run over every workspace project, so `pnpm test` ends in one summary line.
// The "source" export condition points workspace packages at their TypeScript source,
// so tests never depend on a stale build.
const project = (name: string, root: string, extra: Record<string, unknown> = {}) => ({
  extends: true as const,
  test: { name, root, include: ["test/**/*.test.ts"], ...extra },
});

// Starts moto's S3 server once per run for the projects whose tests talk to S3 (fails the run,
// never skips, when moto is missing). Not on the root config: the root project would start it too.
const moto = { globalSetup: [fileURLToPath(new URL("./test-support/moto-global-setup.ts", import.meta.url))] };
// moto plus Cloudflare's local R2 simulator (about 530 MiB, so only for the projects whose tests use it).
const s3Peers = {
  globalSetup: [...moto.globalSetup, fileURLToPath(new URL("./test-support/r2sim-global-setup.ts", import.meta.url))],
};
// The server's replicas share a nonce store on Debian's redis-server (fails the run when it is missing).
const s3PeersAndRedis = {
  globalSetup: [...s3Peers.globalSetup, fileURLToPath(new URL("./test-support/redis-global-setup.ts", import.meta.url))],
};

export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      project("artifacts", "packages/artifacts", s3Peers),
      project("server", "apps/server", s3PeersAndRedis),
      project("cli", "apps/cli", s3Peers),
      project("infra", "infra"),
      project("bench", "bench"),
      // The grantee page in Chromium, Firefox and WebKit (Debian's, headless), against its own moto with real CORS rules.
      project("web", "apps/web", { globalSetup: [fileURLToPath(new URL("./apps/web/test/global-setup.ts", import.meta.url))] }),
      // The README and docs/: links, named files and the messages that cite them.
      project("docs", "docs"),
      // The image in a real container (podman), nginx in front of the server, the packed SDK installed elsewhere.
      project("deploy", "deploy", { testTimeout: 300_000, hookTimeout: 420_000 }),
    ],
  },
});
