import type { BenchContext, RowResult, Target } from "../harness.js";

/** One row of the table; it may produce several table rows (3a, 3b). */
export interface RowSpec {
  id: string;
  /** Shown if the row fails before it can describe itself. */
  figure: string;
  target: Target;
  /** Loaded in the row's own process only: peers' libraries stay out of the other rows' heaps. */
  load(): Promise<(ctx: BenchContext) => Promise<RowResult | RowResult[]>>;
}

export const ROWS: RowSpec[] = [
  {
    id: "1",
    figure: "SDK encrypt + store vs plain stream copy",
    target: { kind: "min-ratio", ratio: 1 },
    load: async () => (await import("./local.js")).row1,
  },
  {
    id: "2",
    figure: "SDK read + decrypt vs plain stream read",
    target: { kind: "min-ratio", ratio: 1 },
    load: async () => (await import("./local.js")).row2,
  },
  {
    id: "3",
    figure: "SDK vs AWS Encryption SDK, encrypt and decrypt",
    target: { kind: "min-ratio", ratio: 8 },
    load: async () => (await import("./peers.js")).row3,
  },
  {
    id: "4",
    figure: "SDK vs age, encrypt and decrypt",
    target: { kind: "min-ratio", ratio: 1.2 },
    load: async () => (await import("./peers.js")).row4,
  },
  {
    id: "5",
    figure: "HTTP download through the server vs plain node:http file server",
    target: { kind: "min-ratio", ratio: 0.9 },
    load: async () => (await import("./server.js")).row5,
  },
  {
    id: "6",
    figure: "Server peak RSS through upload + download",
    target: { kind: "max-and-flat", max: 128, growth: 1.1 },
    load: async () => (await import("./server.js")).row6,
  },
  {
    id: "7",
    figure: "10,000 artifacts of 4 KiB vs plain atomic file writes",
    target: { kind: "min-ratio", ratio: 0.6 },
    load: async () => (await import("./local.js")).row7,
  },
  {
    id: "8",
    figure: "S3 upload client overhead vs plain lib-storage Upload",
    target: { kind: "min-ratio", ratio: 0.95 },
    load: async () => (await import("./s3.js")).row8,
  },
  {
    id: "9",
    figure: "HTTP upload through the server vs plain node:http server writing to disk",
    target: { kind: "min-ratio", ratio: 0.8 },
    load: async () => (await import("./server.js")).row9,
  },
  {
    id: "10",
    figure: "8 concurrent downloads through the server vs plain node:http file server",
    target: { kind: "min-ratio", ratio: 0.8 },
    load: async () => (await import("./server.js")).row10,
  },
  {
    id: "11",
    figure: "Grantee download under a garbage-signature flood vs no flood",
    target: { kind: "min-ratio", ratio: 0.7 },
    load: async () => (await import("./flood.js")).row11,
  },
  {
    id: "12",
    figure: "Direct download by the Node client vs proxied, with server CPU per GiB (S3 storage)",
    target: { kind: "min-ratio", ratio: 1 },
    load: async () => (await import("./direct.js")).row12,
  },
  {
    id: "13",
    figure: "10,000 artifacts of 4 KiB vs two plain atomic file writes per artifact",
    target: { kind: "min-ratio", ratio: 0.9 },
    load: async () => (await import("./layout.js")).row13,
  },
  {
    id: "14",
    figure: "1,000 sequential uploads into one operation: last 100 vs first 100",
    target: { kind: "max-ratio", ratio: 1.2 },
    load: async () => (await import("./layout.js")).row14,
  },
  {
    id: "15",
    figure: "50 sequential uploads through the R2-limits proxy vs straight to moto",
    target: { kind: "min-ratio", ratio: 0.5 },
    load: async () => (await import("./layout.js")).row15,
  },
  {
    id: "16",
    figure: "Listing a finished 1,000-artifact operation on moto, layout 2 vs layout 1",
    target: { kind: "max-ratio", ratio: 2 },
    load: async () => (await import("./layout.js")).row16,
  },
];
