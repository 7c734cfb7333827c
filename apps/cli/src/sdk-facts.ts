/**
 * Multipart part size of the S3 backend: objects up to this size are one PutObject, bigger ones
 * CreateMultipartUpload + ceil(size / part) UploadPart + CompleteMultipartUpload.
 * TODO: import the S3 backend's exported constant once it lands.
 */
export const S3_PART_SIZE = 8 * 1024 * 1024;
