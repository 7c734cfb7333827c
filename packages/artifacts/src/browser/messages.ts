// What a person is told about a failure: one sentence per error code the clients throw.
import { ArtifactError } from "../errors.js";

/** A failure as the grantee page shows it. */
export interface ErrorMessage {
  /** Stable code (the SDK's error codes, e.g. `not_found`, `expired`, `integrity`). */
  code: string;
  /** One sentence for the person. */
  title: string;
  /** The underlying message, for details. */
  detail: string;
}

const TITLES: Record<string, string> = {
  not_found: "Not found or not shared with this wallet.",
  forbidden: "Not found or not shared with this wallet.",
  expired: "This operation has expired; its artifacts are gone.",
  integrity: "The data failed verification (it was changed or damaged in storage). Nothing was saved.",
  storage_unavailable: "The server or the storage cannot be reached. Check the address and your connection, then retry.",
  unauthenticated: "The request was not signed: connect the wallet and approve the signature.",
  conflict: "The artifact was replaced while it was downloading. Start the download again.",
  invalid_input: "That is not a valid operation id or artifact.",
  range_not_satisfiable: "That part of the artifact does not exist.",
  save_path: "This browser window cannot save that way. Remove #save= from the link to let the page choose.",
};

/** The page's message for `error` (an SDK error, an abort, or anything else). */
export function describeError(error: unknown): ErrorMessage {
  if (error instanceof ArtifactError) {
    return { code: error.code, title: TITLES[error.code] ?? "The server refused the request.", detail: error.message };
  }
  const name = (error as Error | undefined)?.name;
  if (name === "AbortError") return { code: "aborted", title: "Cancelled.", detail: "" };
  // save.ts's SavePathError (by name: that module imports this one): only a forced path's failure gets here.
  if (name === "SavePathError") return { code: "save_path", title: TITLES.save_path!, detail: (error as Error).message };
  return { code: "internal", title: "Something went wrong.", detail: String((error as Error | undefined)?.message ?? error) };
}
