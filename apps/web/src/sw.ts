import { serveDownloads, type DownloadWorkerScope } from "@personal-server/artifacts/browser";

serveDownloads(self as unknown as DownloadWorkerScope);
