// `@personal-server/artifacts/client`: HTTP clients of the server (apps/server) for grantees and writers.
export {
  createGranteeClient,
  type ArtifactListing,
  type ByteRangeRequest,
  type DownloadInfo,
  type DownloadOptions,
  type DownloadStream,
  type GranteeClient,
  type GranteeClientOptions,
  type RemoteArtifact,
  type TicketedArtifact,
  type TicketFailure,
  type TicketListing,
} from "./grantee.js";
export { type DeliveryTicket } from "./direct.js";
export {
  contentTypeFor,
  createWriterClient,
  type CreatedOperation,
  type CreateOperationRequest,
  type UploadBody,
  type UploadedArtifact,
  type UploadOptions,
  type WriterClient,
  type WriterClientOptions,
} from "./writer.js";
export {
  bodyHash,
  canonicalSignature,
  newNonce,
  signatureFormProblem,
  signRequest,
  web3SignedAuthorization,
  type MessageSigner,
  type SignRequestInput,
  type Web3SignedPayload,
} from "./web3signed.js";
export { serverLocation, type ServerLocation } from "./http.js";
// The error classes the clients throw (same codes as the server's answers), without loading the store.
export * from "../errors.js";
