// Values the globalSetup files provide to tests (`inject(...)` from vitest).
import type { R2SimInfo } from "./r2sim.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** moto's S3 endpoint, `http://127.0.0.1:<port>` (test-support/moto-global-setup.ts). */
    motoEndpoint: string;
    /** Cloudflare's local R2 simulator: endpoint, credentials, bucket pool (test-support/r2sim-global-setup.ts). */
    r2Sim: R2SimInfo;
  }
}
export {};
