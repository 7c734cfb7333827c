import type { ArtifactStore } from "@personal-server/artifacts";
import type { FastifyBaseLogger } from "fastify";
import type { ServerMetrics } from "./metrics.js";

/** setTimeout's ceiling (about 24.8 days); longer intervals are clamped to it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs the expiry sweep once now and then every `intervalSeconds`, logging what it deleted.
 * Timers are unref'd (they never keep the process alive) and a sweep never overlaps the previous one.
 */
export function startSweeper(
  store: ArtifactStore,
  metrics: ServerMetrics,
  log: FastifyBaseLogger,
  intervalSeconds: number,
): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  let stopped = false;

  const sweep = async (): Promise<void> => {
    try {
      const result = await store.sweepExpired();
      metrics.sweepRuns.inc({ outcome: "ok" });
      metrics.recordUsage(result.usage, new Date());
      metrics.sweepDeleted.inc({ kind: "operations" }, result.deletedOperations);
      metrics.sweepDeleted.inc({ kind: "objects" }, result.deletedObjects);
      metrics.sweepDeleted.inc({ kind: "temporary" }, typeof result.deletedTemporary === "number" ? result.deletedTemporary : 0);
      log.info({ sweep: result }, "expiry sweep done");
    } catch (error) {
      metrics.sweepRuns.inc({ outcome: "failed" });
      log.error({ err: error }, "expiry sweep failed");
    }
  };
  const tick = (): void => {
    if (stopped || running !== undefined) return;
    running = sweep().finally(() => {
      running = undefined;
    });
  };

  const timer = setInterval(tick, Math.min(intervalSeconds * 1000, MAX_TIMER_MS));
  timer.unref();
  const first = setTimeout(tick, 0);
  first.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      clearTimeout(first);
      await running;
    },
  };
}
