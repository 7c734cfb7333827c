import { describe, expect, it } from "vitest";
import { DEFAULT_RETENTION_DAYS, OPERATIONS_PREFIX } from "@personal-server/artifacts";
import * as c from "@personal-server/artifacts/constants";
describe("constants", () => {
  it("match", () => {
    expect(c.OPERATIONS_PREFIX).toBe(OPERATIONS_PREFIX);
    expect(DEFAULT_RETENTION_DAYS).toBe(7);
    expect(import.meta.resolve ? true : true).toBe(true);
  });
});
