/** One check's outcome. Only `fail` makes doctor exit non-zero. */
export interface Check {
  name: string;
  status: "pass" | "warn" | "fail" | "skip";
  message: string;
  /** What to do about it (fail and warn). */
  fix?: string;
}

/** Where a check records its outcome. */
export type Add = (check: Check) => void;

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
