// Monitoring as code, checked with Prometheus' own tools (Debian's `prometheus` package, 2.42):
// the rules pass `promtool check rules` and their unit tests (every alert firing and quiet), every
// dashboard query with its variables substituted passes as a recording rule, and a real Prometheus
// on loopback scrapes a real server through its metrics listener with the shipped configuration:
// every series a rule or panel names exists, every rule evaluates, and the API port serves none.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServerProcess, startServer } from "../../test-support/server-process.js";
import { ROOT, freePort, must, requireTools, run } from "./podman.js";

const DIR = join(ROOT, "deploy/prometheus");
const RULES = join(DIR, "rules.yml");
const rules = readFileSync(RULES, "utf8");
const UNIT_TESTS = ["rules.test.yml", "rules.baseline.test.yml"];
const unitTests = UNIT_TESTS.map((file) => readFileSync(join(DIR, file), "utf8")).join("\n");
const dashboard = JSON.parse(readFileSync(join(ROOT, "deploy/grafana/personal-server-artifacts.json"), "utf8")) as {
  templating: { list: { name: string }[] };
  panels: { id: number; title: string; targets: { refId: string; expr: string }[] }[];
};
const operations = readFileSync(join(ROOT, "docs/operations.md"), "utf8");
const TOKEN = "prometheus-test-metrics-token-obviously-fake";

const alerts = [...rules.matchAll(/^ {6}- alert: (\S+)$/gm)].map((m) => m[1]!);

/** Dashboard queries as Grafana sends them for "All" instances over a 5-minute rate window. */
const panelQueries = dashboard.panels.flatMap((panel) =>
  panel.targets.map((t) => ({
    record: `dashboard:panel_${panel.id}_${t.refId}`,
    expr: t.expr.replaceAll("$__rate_interval", "5m").replaceAll("$instance", ".*"),
  })),
);

/** The rules' expressions. */
const ruleExprs = [...rules.matchAll(/^ +expr: (.+)$/gm)].map((m) => m[1]!);

/** Metric names the expressions read (recording rules' own `a:b:c` names aside). */
function seriesNamed(exprs: string[]): string[] {
  return [...new Set(exprs.flatMap((e) => [...e.matchAll(/\b(artifacts_[a-z0-9_]+|up(?=\{))\b/g)].map((m) => m[1]!)))].sort();
}

describe("rules and dashboard, with promtool", () => {
  beforeAll(() => requireTools("promtool"));

  it("promtool checks the rules and the example configuration", async () => {
    expect(await must("promtool", ["check", "rules", RULES])).toMatch(/SUCCESS: \d+ rules found/);
    expect(await must("promtool", ["check", "config", "prometheus.yml"], { cwd: DIR })).toContain("is valid prometheus config file syntax");
  });

  it("every alert fires in a unit test and stays quiet in another, and promtool's unit tests pass", async () => {
    expect(alerts.length).toBeGreaterThanOrEqual(11);
    const cases = unitTests.split(/^ {6}- eval_time: /m).slice(1).map((block) => ({
      alert: /^ {8}alertname: (\S+)$/m.exec(block)?.[1],
      fires: /^ {8}exp_alerts:/m.test(block),
    }));
    for (const alert of alerts) {
      expect({ alert, fires: cases.some((c) => c.alert === alert && c.fires) }).toEqual({ alert, fires: true });
      expect({ alert, quiet: cases.some((c) => c.alert === alert && !c.fires) }).toEqual({ alert, quiet: true });
    }
    const out = await must("promtool", ["test", "rules", ...UNIT_TESTS], { cwd: DIR });
    expect(out.match(/^ {2}SUCCESS$/gm)).toHaveLength(UNIT_TESTS.length);
  });

  it("each alert has a summary and a runbook link to a section of docs/operations.md", () => {
    const anchors = new Set([...operations.matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^a-z0-9 -]/g, "").replaceAll(" ", "-")));
    for (const alert of alerts) {
      const block = rules.slice(rules.indexOf(`- alert: ${alert}\n`)).split(/\n {6}- /)[0]!;
      expect(block, alert).toMatch(/^ {10}summary: /m);
      expect({ alert, runbook: /runbook: docs\/operations\.md#(\S+)/.exec(block)?.[1] }).toEqual({ alert, runbook: alert.toLowerCase() });
      expect(anchors.has(alert.toLowerCase()), `docs/operations.md has no section ${alert}`).toBe(true);
    }
  });

  it("every dashboard query, variables substituted, passes promtool as a recording rule (and a broken one would not)", async () => {
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(["datasource", "instance"]);
    expect(panelQueries.length).toBeGreaterThan(15);
    for (const q of panelQueries) expect(q.expr, q.record).not.toContain("$");
    const dir = mkdtempSync(join(tmpdir(), "psa-promtool-"));
    try {
      // JSON is YAML: the rule file promtool reads.
      const file = join(dir, "dashboard.rules.json");
      writeFileSync(file, JSON.stringify({ groups: [{ name: "dashboard", rules: panelQueries }] }));
      expect(await must("promtool", ["check", "rules", file])).toContain(`SUCCESS: ${panelQueries.length} rules found`);
      const broken = join(dir, "broken.rules.json");
      writeFileSync(broken, JSON.stringify({ groups: [{ name: "dashboard", rules: [{ record: "dashboard:broken", expr: "sum(rate(artifacts_errors_total[$__rate_interval]))" }] }] }));
      expect((await run("promtool", ["check", "rules", broken])).code).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a real Prometheus scraping a real server's metrics listener", () => {
  let dir: string;
  let server: ServerProcess;
  let prometheus: ChildProcess | undefined;
  let api: string;
  let log = "";

  const query = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${api}${path}`);
    const body = (await res.json()) as { status: string; data: T };
    expect(body.status, path).toBe("success");
    return body.data;
  };
  /** An instant query's vector. */
  const instant = async <T = { metric: Record<string, string>; value: [number, string] }>(expr: string): Promise<T[]> =>
    (await query<{ result: T[] }>(`/query?query=${encodeURIComponent(expr)}`)).result;
  const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
    for (let i = 0; i < 150 && prometheus?.exitCode === null; i++) {
      if (await check().catch(() => false)) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const targets = await fetch(`${api}/targets`).then((r) => r.text(), (e: Error) => e.message);
    throw new Error(`timed out waiting for ${what}; targets: ${targets}\nprometheus said:\n${log.slice(-3000)}`);
  };

  beforeAll(async () => {
    requireTools("prometheus");
    dir = mkdtempSync(join(tmpdir(), "psa-prometheus-"));
    const metricsPort = await freePort();
    server = await startServer({
      ARTIFACTS_LOCAL_DIR: join(dir, "data"),
      ARTIFACTS_WRITER_TOKEN: "prometheus-test-writer-token-obviously-fake",
      ARTIFACTS_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      ARTIFACTS_METRICS_TOKEN: TOKEN,
      ARTIFACTS_SWEEP_INTERVAL: "1s",
    });
    expect(server.metricsUrl).toBe(`http://127.0.0.1:${metricsPort}/metrics`);
    // One API request, so the per-request series exist too (their labels are the answers').
    expect((await fetch(`${server.url}/health`)).status).toBe(200);

    // The shipped configuration, with only its target, token and intervals changed.
    writeFileSync(join(dir, "token"), TOKEN);
    const shipped = readFileSync(join(DIR, "prometheus.yml"), "utf8");
    const config = shipped
      .replaceAll("30s", "1s")
      .replace("  - rules.yml", `  - ${RULES}`)
      .replace('["127.0.0.1:9464"]', `["127.0.0.1:${metricsPort}"]`)
      .replace("    # authorization:\n    #   credentials_file: /etc/prometheus/artifacts-metrics-token", `    authorization:\n      credentials_file: ${join(dir, "token")}`);
    expect(config).not.toContain("#   credentials_file");
    writeFileSync(join(dir, "prometheus.yml"), config);
    const port = await freePort();
    api = `http://127.0.0.1:${port}/api/v1`;
    prometheus = spawn("prometheus", [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "tsdb")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    prometheus.stderr!.setEncoding("utf8").on("data", (d: string) => (log += d));
    prometheus.stdout!.setEncoding("utf8").on("data", (d: string) => (log += d));
    await until("the first scrape", async () => (await instant('up{job="artifacts"}'))[0]?.value[1] === "1");
  });

  afterAll(async () => {
    if (prometheus !== undefined && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus!.once("exit", resolve));
      prometheus.kill("SIGTERM");
      await exited;
    }
    await server?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("finds every series a rule or panel names; every rule evaluates without error; the bucket gauges are current", async () => {
    const named = seriesNamed([...ruleExprs, ...panelQueries.map((q) => q.expr)]);
    expect(ruleExprs.length).toBe(22);
    for (const name of ["artifacts_storage_cost_month_usd", "artifacts_usage_refreshed_timestamp_seconds", "artifacts_process_start_time_seconds", "up"]) expect(named).toContain(name);
    const exported = new Set(await query<string[]>("/label/__name__/values"));
    expect(named.filter((name) => !exported.has(name))).toEqual([]);

    // Every rule has been evaluated at least once, none with an error.
    await until("every rule evaluated", async () => {
      const { groups } = await query<{ groups: { rules: { name: string; health: string }[] }[] }>("/rules");
      return groups.flatMap((g) => g.rules).every((r) => r.health === "ok");
    });
    const { groups } = await query<{ groups: { name: string; rules: { name: string; type: string; health: string; lastError?: string }[] }[] }>("/rules");
    expect(groups.map((g) => g.name)).toEqual(["artifacts"]);
    expect(groups[0]!.rules.filter((r) => r.health !== "ok")).toEqual([]);
    expect(groups[0]!.rules.filter((r) => r.type === "alerting").map((r) => r.name)).toEqual(alerts);

    // The sweep runs every second: the gauges are fresh, so the recording rules see them.
    await until("fresh bucket gauges", async () => (await instant("artifacts:free_tier_used_ratio:max")).length === 1);
    // Nothing fires or is pending against a healthy server (ArtifactsDown is pending only until the first scrape).
    await until("no alert", async () => (await instant("ALERTS")).length === 0);
  });

  it("the API port serves none of it, and the metrics listener only with the token", async () => {
    const onApi = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(onApi.status).toBe(404);
    expect(await onApi.text()).not.toContain("artifacts_");
    expect((await fetch(server.metricsUrl!)).status).toBe(401);
    const scraped = await fetch(server.metricsUrl!, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await scraped.text()).toMatch(/^artifacts_usage_stale 0$/m);
  });
});
