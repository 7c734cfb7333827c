import { type ArtifactsConfig, OPERATIONS_PREFIX } from "@personal-server/artifacts";
import type { Backend } from "@personal-server/artifacts/internal";
import { adviceFor, classify } from "../advice.js";
import { formatDuration } from "../format.js";
import { type Add, messageOf } from "./check.js";

const NO_LIFECYCLE_API = "this storage endpoint does not implement lifecycle configuration (HTTP 501)";

/**
 * The bucket's lifecycle rule is the backstop: it must expire operations/ later than ARTIFACTS_TTL.
 * With a malformed ARTIFACTS_TTL (`ttlUsable` false) the rule is only described, not compared.
 */
export async function lifecycleCheck(backend: Backend, config: ArtifactsConfig, add: Add, ttlUsable: boolean): Promise<void> {
  const ttl = formatDuration(config.ttlSeconds);
  const wantDays = Math.ceil(config.ttlSeconds / 86_400) + 1;
  try {
    if (!ttlUsable) {
      const rules = await backend.getLifecycleRules();
      const found =
        rules === null
          ? "local storage has no lifecycle rule"
          : rules === "not_visible"
            ? "lifecycle rules are not visible to this token"
            : rules === "not_supported"
              ? NO_LIFECYCLE_API
              : rules
                .filter((r) => r.expirationDays !== undefined && (OPERATIONS_PREFIX.startsWith(r.prefix) || r.prefix.startsWith(OPERATIONS_PREFIX)))
                .map((r) => `${r.id === "" ? "a rule" : `rule "${r.id}"`} expires "${r.prefix}" after ${r.expirationDays} day(s)`)
                .join("; ") || `no lifecycle rule expires ${OPERATIONS_PREFIX}`;
      add({ name: "lifecycle", status: "skip", message: `not compared with ARTIFACTS_TTL (malformed above): ${found}` });
      return;
    }
    const rules = await backend.getLifecycleRules();
    if (rules === null) {
      add({ name: "lifecycle", status: "skip", message: "local storage: the sweep is the only cleanup" });
      return;
    }
    if (rules === "not_supported") {
      add({
        name: "lifecycle",
        status: "skip",
        message: `${NO_LIFECYCLE_API} (not a failure); expired artifacts are deleted by the sweep alone unless the store expires ${OPERATIONS_PREFIX} some other way`,
      });
      return;
    }
    if (rules === "not_visible") {
      add({
        name: "lifecycle",
        status: "skip",
        message: `lifecycle rules are not visible to this token (not a failure); make sure the bucket expires ${OPERATIONS_PREFIX} after ${wantDays} days or more (infra sets it)`,
      });
      return;
    }
    const applicable = rules.filter(
      (r) => r.expirationDays !== undefined && (OPERATIONS_PREFIX.startsWith(r.prefix) || r.prefix.startsWith(OPERATIONS_PREFIX)),
    );
    if (applicable.length === 0) {
      add({
        name: "lifecycle",
        status: "warn",
        message: `no lifecycle rule expires ${OPERATIONS_PREFIX}: expired artifacts are deleted by the sweep alone`,
        fix: `add a rule expiring ${OPERATIONS_PREFIX} after ${wantDays} days (ARTIFACTS_TTL + 1 day; \`pulumi up\` in infra/ does)`,
      });
      return;
    }
    const shortest = applicable.reduce((a, b) => (b.expirationDays! < a.expirationDays! ? b : a));
    const days = shortest.expirationDays!;
    const name = shortest.id === "" ? "a lifecycle rule" : `lifecycle rule "${shortest.id}"`;
    if (days * 86_400 <= config.ttlSeconds) {
      add({
        name: "lifecycle",
        status: "fail",
        message: `${name} expires "${shortest.prefix}" after ${days} day(s), not longer than ARTIFACTS_TTL (${ttl}): storage would delete live artifacts`,
        fix: `lengthen the rule to ${wantDays} days or more, or set ARTIFACTS_TTL below ${days}d`,
      });
      return;
    }
    add({ name: "lifecycle", status: "pass", message: `${name} expires "${shortest.prefix}" after ${days} days, longer than ARTIFACTS_TTL (${ttl})` });
  } catch (error) {
    add({ name: "lifecycle", status: "fail", message: messageOf(error), fix: adviceFor(classify(error), config) });
  }
}

