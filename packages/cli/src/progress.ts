import cliProgress from "cli-progress";
import type { ModelInfo, ProgressEvent, ProgressStream } from "llmos";
import type { CliContext } from "./context.js";
import { formatBytes, formatSpan } from "./format.js";

/** Bytes-per-second over a sliding window, so the speed and ETA do not jump with every chunk. */
class SpeedMeter {
  readonly #samples: Array<[number, number]> = [];
  add(bytes: number, now = Date.now()): void {
    this.#samples.push([now, bytes]);
    while (this.#samples.length > 2 && now - this.#samples[0]![0] > 5000) this.#samples.shift();
  }
  perSecond(): number {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || last[0] === first[0]) return 0;
    return ((last[1] - first[1]) * 1000) / (last[0] - first[0]);
  }
}

/**
 * Shows the progress of a pull/push/create: a bar per blob with bytes, speed and ETA on a terminal, one line per
 * status change otherwise, NDJSON with `--json`. Resolves with the resulting model.
 */
export async function showProgress<T = ModelInfo>(
  ctx: CliContext,
  stream: ProgressStream<T>,
  json: boolean,
): Promise<T> {
  if (json) {
    for await (const event of stream) ctx.print(JSON.stringify(event));
    return stream.done();
  }
  const tty = Boolean(ctx.stderr.isTTY);
  let bar: cliProgress.SingleBar | undefined;
  /** The step the bar shows: the blob's digest, or the status text when the server sends no digest. */
  let barKey: string | undefined;
  let meter = new SpeedMeter();
  let lastStatus = "";
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
    barKey = undefined;
  };
  try {
    for await (const event of stream) {
      if (tty && event.total) {
        const key = event.digest ?? event.status;
        if (barKey !== key) {
          stopBar();
          meter = new SpeedMeter();
          barKey = key;
          bar = new cliProgress.SingleBar(
            {
              stream: ctx.stderr,
              hideCursor: true,
              clearOnComplete: false,
              barsize: 25,
              format: (options, params, payload: { status: string; detail: string }) => {
                const size = options.barsize ?? 25;
                const filled = Math.round(params.progress * size);
                const barText = "█".repeat(filled) + "░".repeat(size - filled);
                return `${payload.status} ${barText} ${Math.floor(params.progress * 100)}% ${payload.detail}`;
              },
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(event.total, 0, { status: label(event), detail: "" });
        }
        lastStatus = event.status;
        const done = event.completed ?? 0;
        meter.add(done);
        const speed = meter.perSecond();
        const eta = speed > 0 ? formatSpan(((event.total - done) / speed) * 1000) : "?";
        bar?.update(done, {
          status: label(event),
          detail: `${formatBytes(done)}/${formatBytes(event.total)} ${formatBytes(Math.round(speed))}/s ETA ${eta}`,
        });
        continue;
      }
      if (event.status !== lastStatus) {
        stopBar();
        lastStatus = event.status;
        ctx.info(event.total ? `${label(event)} ${formatBytes(event.total)}` : event.status);
      }
    }
  } finally {
    stopBar();
  }
  return stream.done();
}

function label(event: ProgressEvent): string {
  const digest = event.digest ? ` ${event.digest.replace(/^sha256:/, "").slice(0, 12)}` : "";
  return `${event.status}${digest}`;
}
