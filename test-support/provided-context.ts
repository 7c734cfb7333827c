// Values the globalSetup files provide to tests (`inject(...)` from vitest).
declare module "vitest" {
  export interface ProvidedContext {
    /** moto's S3 endpoint, `http://127.0.0.1:<port>` (test-support/moto-global-setup.ts). */
    motoEndpoint: string;
  }
}
export {};
