import type { Check } from "../check.js";
import { lifecycleCheck } from "../lifecycle.js";
import type { DeepCheck } from "./context.js";

/** The bucket's lifecycle rule expires operations/ later than ARTIFACTS_TTL (doctor's own check, as a row). */
export const lifecycle: DeepCheck = {
  name: "lifecycle",
  async run(ctx) {
    const rules = await ctx.backend.getLifecycleRules();
    if (rules === null) return { status: "not supported", detail: "local storage: the sweep is the only cleanup" };
    if (rules === "not_supported") return { status: "not supported", detail: "the endpoint answers lifecycle configuration with 501 Not Implemented" };
    if (rules === "not_visible") {
      return { status: "skip", detail: "this token may not read the lifecycle configuration (R2 bucket tokens cannot): check it in the dashboard, or with the infra stack" };
    }
    const found: Check[] = [];
    await lifecycleCheck(ctx.backend, ctx.config, (c) => found.push(c), true);
    const check = found[0]!;
    return { status: check.status === "pass" ? "pass" : "fail", detail: check.fix === undefined ? check.message : `${check.message}; fix: ${check.fix}` };
  },
};
