// Pulumi program: the R2 bucket, its lifecycle and CORS policies, bucket-scoped tokens and
// (optionally) event notifications, exporting exactly the config the SDK consumes.
// Resources live in src/ (so tests can build them directly); this file reads config,
// wires and exports. Field docs: ProgramOutputs in src/program.ts.
import { readInfraConfig } from "./src/config";
import { createProgram } from "./src/program";

const { outputs } = createProgram(readInfraConfig());

export const accountId = outputs.accountId;
export const bucketName = outputs.bucketName;
export const jurisdiction = outputs.jurisdiction;
export const s3Endpoint = outputs.s3Endpoint;
export const accessKeyId = outputs.accessKeyId;
export const secretAccessKey = outputs.secretAccessKey;
export const retentionDays = outputs.retentionDays;
export const tokenExpiresOn = outputs.tokenExpiresOn;
export const corsOrigins = outputs.corsOrigins;
export const artifactStore = outputs.artifactStore;
