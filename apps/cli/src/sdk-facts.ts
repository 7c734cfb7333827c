/**
 * Multipart part size of the S3 backend (its `DEFAULT_PART_SIZE`, not exported): objects up to
 * this size are one PutObject, bigger ones CreateMultipartUpload + ceil(size / part) UploadPart +
 * CompleteMultipartUpload. test/cost-wire.test.ts checks it against the requests the SDK sends;
 * import the SDK's constant instead once it exports one.
 */
export const S3_PART_SIZE = 8 * 1024 * 1024;
