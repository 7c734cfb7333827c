// Entry point of `pnpm --filter @personal-server/infra export-env`; the logic is in src/export-env.ts.
import path from "node:path";
import { main } from "../src/export-env";

process.exitCode = main(process.argv.slice(2), path.resolve(__dirname, ".."));
