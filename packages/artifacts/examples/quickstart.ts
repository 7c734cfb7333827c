import { createArtifactStore } from "@personal-server/artifacts";

// Local storage unless R2_* or S3_* variables are set (environment or .env).
const store = createArtifactStore();
const grantee = "0x00000000000000000000000000000000000000aa"; // the reader's EVM address

const op = await store.createOperation({ grantee, agent: "gemini", ttlSeconds: 3600 });
await store.putArtifact(op.operationId, "privacy_audit.md", "# Privacy audit\nNo findings.\n", {
  contentType: "text/markdown",
});

const { artifacts } = await store.listArtifacts(op.operationId, { requester: grantee });
console.log(op.operationId, artifacts.map((a) => `${a.path} (${a.size} B)`).join(", "));

const { body } = await store.getArtifact(op.operationId, "privacy_audit.md", { requester: grantee });
for await (const chunk of body) process.stdout.write(chunk);

await store.deleteOperation(op.operationId);
await store.close();
