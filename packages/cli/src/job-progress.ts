import cliProgress from "cli-progress";
import type { Client, JobView } from "llmos";
import type { CliContext } from "./context.js";

/**
 * Follows a job to its end: a bar of chunks done on a terminal, a line at each quarter otherwise, every view as
 * NDJSON with `--json`. Ctrl+C cancels the job on the daemon. Resolves with the finished view.
 */
export async function followJob(ctx: CliContext, client: Client, job: JobView, json: boolean): Promise<JobView> {
  const tty = Boolean(ctx.stderr.isTTY) && !json;
  let bar: cliProgress.SingleBar | undefined;
  let lastQuarter = -1;
  const onSigint = () => {
    void client.jobs.cancel(job.id).finally(() => process.exit(130));
  };
  process.once("SIGINT", onSigint);
  try {
    return await client.jobs.wait(job.id, (view) => {
      if (json) return ctx.print(JSON.stringify(view));
      const { done, total } = view.progress;
      if (total === 0) return;
      if (tty) {
        bar ??= new cliProgress.SingleBar(
          {
            stream: ctx.stderr,
            hideCursor: true,
            barsize: 25,
            format: `${job.kind} {bar} {percentage}% {value}/{total} chunks ETA {eta_formatted}`,
          },
          cliProgress.Presets.shades_classic,
        );
        if (!bar.isActive) bar.start(total, done);
        bar.update(done);
        return;
      }
      const quarter = Math.floor((done / total) * 4);
      if (quarter !== lastQuarter) {
        lastQuarter = quarter;
        ctx.info(`${job.kind}: ${done}/${total} chunks`);
      }
    });
  } finally {
    bar?.stop();
    process.off("SIGINT", onSigint);
  }
}

/** Throws the job's error as the CLI shows errors, when it did not succeed. */
export function requireSuccess(view: JobView): void {
  if (view.state === "succeeded") return;
  const reason = view.error ? `${view.error.message} (${view.error.code})` : view.state;
  throw new Error(`${view.kind} job ${view.state}: ${reason}`);
}
