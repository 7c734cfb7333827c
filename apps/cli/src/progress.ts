import cliProgress from "cli-progress";
import type { Io } from "./io.js";

/** Progress of a long command: a bar on a terminal, plain periodic lines otherwise (logs, CI, pipes). */
export interface Progress {
  /** Sets how many items the work has, once it is known (listing may come first). */
  setTotal(total: number): void;
  /** Marks `n` more items done; `detail` names the last one (shown on plain lines). */
  tick(n?: number, detail?: string): void;
  /** Ends the bar; plain output prints the final count. */
  stop(): void;
}

/** Plain lines are printed about this many times over a run of known size (every item for fewer). */
const PLAIN_STEPS = 20;
/** Without a known total, a plain line every this many items. */
const PLAIN_EVERY = 100;

/**
 * Progress goes to stderr, so `--json` output on stdout stays one clean document.
 * Plain lines look like `migrate: 3/40 objects (operations/x/metadata.json)`: printed at every
 * 5 % step (every item for up to 20 items), so a log shows the run advancing without one line
 * per object on big runs. Without a total (before it is known) a line every 100 items.
 */
export function createProgress(io: Io, label: string, unit: string): Progress {
  let total: number | undefined;
  let done = 0;
  if (io.stderr.isTTY === true) {
    const bar = new cliProgress.SingleBar(
      {
        stream: io.stderr as unknown as NodeJS.WritableStream,
        format: (options, params) =>
          total === undefined
            ? `${label}: ${params.value} ${unit}`
            : cliProgress.Format.Formatter(
                { ...options, format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | ETA {eta_formatted}` },
                params,
                {},
              ),
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    const show = () => {
      const size = total ?? done + 1;
      if (!started) {
        bar.start(size, done);
        started = true;
      } else {
        bar.setTotal(size);
        bar.update(done);
      }
    };
    return {
      setTotal(n) {
        total = n;
        show();
      },
      tick(n = 1) {
        done += n;
        show();
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let nextLine = PLAIN_EVERY;
  let printed = -1;
  const line = (detail?: string) => {
    printed = done;
    io.stderr.write(`${label}: ${done}${total === undefined ? "" : `/${total}`} ${unit}${detail === undefined ? "" : ` (${detail})`}\n`);
  };
  const step = () => (total === undefined ? PLAIN_EVERY : Math.max(1, Math.ceil(total / PLAIN_STEPS)));
  return {
    setTotal(n) {
      total = n;
      nextLine = Math.max(done + 1, step());
      line();
    },
    tick(n = 1, detail) {
      done += n;
      if (done >= nextLine || done === total) {
        line(detail);
        nextLine = (Math.floor(done / step()) + 1) * step();
      }
    },
    stop() {
      if (printed !== done) line();
    },
  };
}
