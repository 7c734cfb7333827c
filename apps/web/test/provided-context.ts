// Values the web project's globalSetup provides to its tests (`inject(...)` from vitest).
import "../../../test-support/provided-context.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** The page, built for this run (the server serves it with ARTIFACTS_WEB_UI=1). */
    webDist: string;
    /** The browser client as one classic script that defines `window.PSA`. */
    browserClientScript: string;
  }
}
export {};
