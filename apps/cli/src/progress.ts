import cliProgress from "cli-progress";
import type { Io } from "./io.js";

/** Progress of a long command: a bar on a terminal, plain periodic lines otherwise (logs, CI, pipes). */
export interface Progress {
  /** Sets how many items the work has, once it is known (listing may come first). */
  setTotal(total: number): void;
  /**
   * Marks `n` more items done. `detail` describes the state after them: the last item's name, or
   * running totals. Plain lines show it; a terminal counter (no total) shows the latest one.
   */
  tick(n?: number, detail?: string): void;
  /** Ends the bar; plain output prints the final count. */
  stop(): void;
}

/** Plain lines are printed about this many times over a run of known size (every item for fewer). */
const PLAIN_STEPS = 20;
/** Without a known total, a plain line every this many items. */
const PLAIN_EVERY = 100;
/** Spinner of a terminal counter (no total): one frame per 100 ms, redrawn by cli-progress's timer. */
const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const SPINNER_MS = 100;

/**
 * Progress goes to stderr, so `--json` output on stdout stays one clean document.
 *
 * With a known total: a bar on a terminal; plain lines like `migrate: 3/40 objects (operations/x/metadata.json)`
 * otherwise, printed at every 5 % step (every item for up to 20 items), so a log shows the run
 * advancing without one line per object on big runs.
 *
 * Without a total (work whose size is only known at the end, like the sweep's single listing):
 * a spinner and a running count on a terminal (`cleanup ⠹ 1200 operations (deleted …)`, the spinner
 * turning while a slow request is outstanding), ending as `cleanup: 1234 operations (…)`; plain
 * lines `cleanup: 100 operations (…)` every 100 items and a last one with the final count.
 */
export function createProgress(io: Io, label: string, unit: string): Progress {
  let total: number | undefined;
  let done = 0;
  let lastDetail: string | undefined;
  const counter = (prefix: string) => `${prefix} ${done} ${unit}${lastDetail === undefined ? "" : ` (${lastDetail})`}`;
  if (io.stderr.isTTY === true) {
    let stopped = false;
    const bar = new cliProgress.SingleBar(
      {
        stream: io.stderr as unknown as NodeJS.WritableStream,
        format: (options, params) =>
          total === undefined
            ? counter(stopped ? `${label}:` : `${label} ${SPINNER[Math.floor(Date.now() / SPINNER_MS) % SPINNER.length]}`)
            : cliProgress.Format.Formatter(
                { ...options, format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | ETA {eta_formatted}` },
                params,
                {},
              ),
        hideCursor: true,
        clearOnComplete: false,
        // cli-progress redraws on a timer at this rate even when no item finished: the spinner
        // turns while a request is outstanding.
        fps: 1000 / SPINNER_MS,
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
      tick(n = 1, detail) {
        done += n;
        if (detail !== undefined) lastDetail = detail;
        show();
      },
      stop() {
        if (!started) return;
        stopped = true;
        // The final frame: the full bar, or the count without the spinner.
        if (total === undefined) bar.setTotal(done);
        bar.stop();
      },
    };
  }
  let nextLine = PLAIN_EVERY;
  let printed = -1;
  const line = (detail: string | undefined) => {
    printed = done;
    io.stderr.write(`${label}: ${done}${total === undefined ? "" : `/${total}`} ${unit}${detail === undefined ? "" : ` (${detail})`}\n`);
  };
  const step = () => (total === undefined ? PLAIN_EVERY : Math.max(1, Math.ceil(total / PLAIN_STEPS)));
  return {
    setTotal(n) {
      total = n;
      nextLine = Math.max(done + 1, step());
      line(undefined);
    },
    tick(n = 1, detail) {
      done += n;
      lastDetail = detail;
      if (done >= nextLine || done === total) {
        line(detail);
        nextLine = (Math.floor(done / step()) + 1) * step();
      }
    },
    stop() {
      // A counter's last line carries the running detail (e.g. cleanup's totals); a bar's names no item.
      if (printed !== done) line(total === undefined ? lastDetail : undefined);
    },
  };
}
