// Values the globalSetup files provide to tests (`inject(...)` from vitest).
declare module "vitest" {
  export interface ProvidedContext {
    /** moto's S3 endpoint, `http://127.0.0.1:<port>` (test-support/moto-global-setup.ts). */
    motoEndpoint: string;
    /** redis-server's URL with its password, `redis://:<password>@127.0.0.1:<port>/0` (test-support/redis-global-setup.ts). */
    redisUrl: string;
  }
}
export {};
