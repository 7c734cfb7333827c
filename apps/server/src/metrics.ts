import { ERROR_STATUS, type StorageObserver, type StoredUsage } from "@personal-server/artifacts";
import { STORAGE_OPERATIONS, storageCost } from "@personal-server/artifacts/internal";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { AUTH_FAILURE_REASONS } from "./auth/failure-reason.js";

/** What the gauges need to know of the configuration. */
export interface MetricsSettings {
  /** `ARTIFACTS_SWEEP_INTERVAL` in seconds (0: no sweep, so the bucket gauges are never refreshed). */
  sweepIntervalSeconds: number;
  /** `ARTIFACTS_MONTHLY_BUDGET_USD`. */
  monthlyBudgetUsd: number;
}

/**
 * The server's Prometheus metrics, on a registry of its own (so several servers can share a
 * process). Labels are small fixed sets (route patterns, methods, statuses, error codes, reasons,
 * storage call kinds), never ids, paths or addresses, and each known label value starts at 0 so its
 * series exists before the first event. docs/operations.md#monitoring lists them.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "artifacts_http_requests_total",
    help: "HTTP requests answered, by route, method and status",
    labelNames: ["route", "method", "status"] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: "artifacts_http_request_duration_seconds",
    help: "Time from request to the end of the response, by route",
    labelNames: ["route"] as const,
    buckets: [0.005, 0.025, 0.1, 0.5, 2, 10, 60, 300],
    registers: [this.registry],
  });
  readonly bytesIn = new Counter({
    name: "artifacts_bytes_in_total",
    help: "Plaintext bytes of artifacts uploaded and stored",
    registers: [this.registry],
  });
  readonly bytesOut = new Counter({
    name: "artifacts_bytes_out_total",
    help: "Plaintext bytes of artifacts sent in completed downloads",
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: "artifacts_errors_total",
    help: "Error answers by error code (plus integrity failures that cut a response already begun); 401s are counted by reason in artifacts_auth_failures_total instead",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: "artifacts_auth_failures_total",
    help: "Failed authentications (401 unauthenticated), by reason",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly deliveryTickets = new Counter({
    name: "artifacts_delivery_tickets_total",
    help: "Direct delivery tickets issued, by storage kind",
    labelNames: ["storage"] as const,
    registers: [this.registry],
  });
  readonly storageCalls = new Counter({
    name: "artifacts_storage_requests_total",
    help: "Calls to storage by kind (get, head, put, delete, list, list_uploads, bucket); a call may be several HTTP requests",
    labelNames: ["operation"] as const,
    registers: [this.registry],
  });
  readonly storageErrors = new Counter({
    name: "artifacts_storage_errors_total",
    help: "Calls to storage that failed (timeout, refused connection, 5xx, disk error), by kind",
    labelNames: ["operation"] as const,
    registers: [this.registry],
  });
  /** The store's storage observer (`StoreOptions.onStorageCall`). */
  readonly storageCall: StorageObserver = (operation, outcome) => {
    this.storageCalls.inc({ operation });
    if (outcome === "error") this.storageErrors.inc({ operation });
  };
  readonly sweepRuns = new Counter({
    name: "artifacts_sweep_runs_total",
    help: "Expiry sweeps run, by outcome",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly sweepDeleted = new Counter({
    name: "artifacts_sweep_deleted_total",
    help: "What expiry sweeps deleted: expired operations, objects, and stale temporary uploads",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  readonly storage = new Gauge({
    name: "artifacts_storage_info",
    help: "Storage backend in use (the label carries the kind; the value is always 1)",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  private readonly bucket = {
    storedBytes: this.gauge("artifacts_stored_bytes", "Bytes under operations/ after the last refresh (encrypted artifacts, metadata, orphans)"),
    operations: this.gauge("artifacts_stored_operations", "Live operations (readable metadata.json, not expired) after the last refresh"),
    artifacts: this.gauge("artifacts_stored_artifacts", "Artifacts the live operations list, after the last refresh"),
    expiredOperations: this.gauge("artifacts_expired_operations", "Expired operations the last refresh found waiting for the sweep (which then deleted them)"),
    orphanObjects: this.gauge("artifacts_orphan_objects", "Objects no readable metadata.json references, as the last refresh found them"),
    freeTierShare: this.gauge("artifacts_free_tier_used_ratio", "Share of R2's free 10 GB-month of Standard storage the stored bytes use (1 = all)"),
    costUsd: this.gauge("artifacts_storage_cost_month_usd", "This month's R2 Standard storage bill in USD if the stored bytes stay as they are"),
  };
  private readonly refreshed = this.gauge("artifacts_usage_refreshed_timestamp_seconds", "When the bucket gauges were last refreshed (a successful sweep), unix seconds; 0: never");

  constructor(storageKind: string, settings: MetricsSettings) {
    this.storage.set({ kind: storageKind }, 1);
    this.gauge("artifacts_sweep_interval_seconds", "ARTIFACTS_SWEEP_INTERVAL in seconds; 0: no sweep").set(settings.sweepIntervalSeconds);
    this.gauge("artifacts_cost_budget_usd", "ARTIFACTS_MONTHLY_BUDGET_USD: the monthly storage bill the cost alert compares against").set(
      settings.monthlyBudgetUsd,
    );
    const refreshed = this.refreshed;
    const interval = settings.sweepIntervalSeconds;
    new Gauge({
      name: "artifacts_usage_stale",
      help: "1 while the bucket gauges are not current: no sweep configured, none succeeded yet, or none for two intervals",
      registers: [this.registry],
      async collect() {
        const at = (await refreshed.get()).values[0]?.value ?? 0;
        this.set(interval === 0 || at === 0 || Date.now() / 1000 - at > 2 * interval ? 1 : 0);
      },
    });
    for (const code of Object.keys(ERROR_STATUS)) if (code !== "unauthenticated") this.errors.inc({ code }, 0);
    for (const reason of AUTH_FAILURE_REASONS) this.authFailures.inc({ reason }, 0);
    for (const operation of STORAGE_OPERATIONS) {
      this.storageCalls.inc({ operation }, 0);
      this.storageErrors.inc({ operation }, 0);
    }
    for (const outcome of ["ok", "failed"]) this.sweepRuns.inc({ outcome }, 0);
    for (const kind of ["operations", "objects", "temporary"]) this.sweepDeleted.inc({ kind }, 0);
    this.deliveryTickets.inc({ storage: storageKind }, 0);
    // Event-loop delay sampled every 100 ms, not every 10 ms (prom-client's default): a timer waking the
    // process 100 times a second was most of an idle server's CPU (docs/performance.md).
    collectDefaultMetrics({ register: this.registry, prefix: "artifacts_", eventLoopMonitoringPrecision: 100 });
  }

  /** Sets the bucket gauges from a sweep's tally, and the refresh time. */
  recordUsage(usage: StoredUsage, at: Date): void {
    const cost = storageCost(usage.storedBytes);
    this.bucket.storedBytes.set(usage.storedBytes);
    this.bucket.operations.set(usage.operations);
    this.bucket.artifacts.set(usage.artifacts);
    this.bucket.expiredOperations.set(usage.expiredOperations);
    this.bucket.orphanObjects.set(usage.orphanObjects);
    this.bucket.freeTierShare.set(cost.freeTierShare);
    this.bucket.costUsd.set(cost.r2Standard);
    this.refreshed.set(at.getTime() / 1000);
  }

  private gauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, registers: [this.registry] });
  }
}
