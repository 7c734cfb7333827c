/**
 * One test server per vitest run, shared by the projects that need it. Each vitest project loads
 * its globalSetup module separately, but all of them run in vitest's main process: the server
 * lives on globalThis, every project's setup takes a reference, and the last teardown stops it.
 *
 * Runs in vitest's main process (globalSetup), so it must not import `vitest` at runtime.
 */

interface Shared<T> {
  refs: number;
  server: Promise<T> | undefined;
}

/** `acquire` starts the server (or reuses the running one) and counts a reference; `release` drops it, the last one stops the server. */
export function sharedServer<T extends { stop(): Promise<void> }>(
  name: string,
  start: () => Promise<T>,
): { acquire(): Promise<T>; release(): Promise<void> } {
  const key = Symbol.for(`personal-server-artifacts.${name}`);
  const shared = (): Shared<T> => {
    const g = globalThis as { [key]?: Shared<T> };
    g[key] ??= { refs: 0, server: undefined };
    return g[key];
  };
  return {
    async acquire() {
      const s = shared();
      s.refs++;
      s.server ??= start();
      try {
        return await s.server;
      } catch (e) {
        s.refs--;
        s.server = undefined;
        throw e;
      }
    },
    async release() {
      const s = shared();
      s.refs--;
      if (s.refs > 0 || !s.server) return;
      const server = s.server;
      s.server = undefined;
      await (await server).stop();
    },
  };
}
