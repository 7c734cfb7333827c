import { defineConfig } from "vitest/config";

// One run over every workspace project, so `pnpm test` ends in one summary line.
// The "source" export condition points workspace packages at their TypeScript source,
// so tests never depend on a stale build.
const project = (name: string, root: string, extra: Record<string, unknown> = {}) => ({
  extends: true as const,
  test: { name, root, include: ["test/**/*.test.ts"], ...extra },
});

export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      project("artifacts", "packages/artifacts"),
      project("server", "apps/server"),
      project("cli", "apps/cli"),
      project("infra", "infra"),
      project("bench", "bench"),
    ],
  },
});
