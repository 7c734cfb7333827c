import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * Streaming allocates a fresh buffer for every piece read, encrypted or decrypted; each dies
 * within a hop. V8 collects such external memory only once it has grown by about 64 MiB since
 * the last collection, which alone takes a server idling at ~65 MiB past 128 MiB during a large
 * transfer (measured: 143 MiB peak over a 2 GiB upload and download). A young-generation
 * collection (about a millisecond) after every 16 MiB streamed frees those buffers while they are
 * still young (measured: 121 MiB). `pnpm start` also caps the young generation
 * (`--max-semi-space-size=1`), which V8 only accepts at startup.
 */
const STEP_BYTES = 16 * 1024 * 1024;

type Gc = (options: { type: "minor" | "major" }) => void;
let collect: Gc | undefined;
try {
  // Exposes `gc` to a fresh context only; the flag does not change how this process runs otherwise.
  setFlagsFromString("--expose-gc");
  collect = runInNewContext("gc") as Gc;
} catch {
  collect = undefined;
}

let streamed = 0;

/** Counts bytes streamed through the server; collects young garbage every STEP_BYTES. */
export function noteStreamed(bytes: number): void {
  streamed += bytes;
  if (streamed < STEP_BYTES) return;
  streamed = 0;
  collect?.({ type: "minor" });
}
