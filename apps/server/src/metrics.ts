import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The server's Prometheus metrics, on a registry of its own (so several servers can share a process). */
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
    help: "Error answers by error code (plus integrity failures that cut a response already begun)",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });
  readonly deliveryTickets = new Counter({
    name: "artifacts_delivery_tickets_total",
    help: "Direct delivery tickets issued, by storage kind",
    labelNames: ["storage"] as const,
    registers: [this.registry],
  });
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

  constructor(storageKind: string) {
    this.storage.set({ kind: storageKind }, 1);
    collectDefaultMetrics({ register: this.registry, prefix: "artifacts_" });
  }
}
