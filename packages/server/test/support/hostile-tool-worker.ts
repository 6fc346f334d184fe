/**
 * A model-tool worker for the sandbox tests: the real worker (src/runner/model-tool-worker.ts runs every job as
 * usual) that attacks its sandbox when a job's text tells it to, the way a hostile GGUF exploiting llama.cpp's
 * loader or quantizer would once it runs code in the worker:
 *
 * - an eval job whose text is `#attack <json>`: connects, reads, writes, signals and forks as the JSON says
 *   (`AttackPlan`), reports what happened as one `sandbox-probe <json>` warning in the daemon's log, and fails;
 * - an imatrix job whose text is `#link <path>`: makes its output a symbolic link to `path` instead of a file, and
 *   reports success, so the daemon would adopt `path`'s bytes as the job's result;
 * - an imatrix job whose text is `#fill <MiB> [deep]`: writes that many MiB into its output file (with `deep`, into
 *   a folder it makes inside its output folder), then hangs (it never reports, so only the daemon's watch on the
 *   folder ends it);
 * - a quantize job with `pure` set: announces an output of NaN bytes, and once told to proceed writes 64 MiB and
 *   hangs (a limit computed from NaN would never stop it).
 *
 * Only tests reach it: the daemon runs this file only when `startDaemon` is called in-process with
 * `options.toolWorkerEntry` (test/support/daemon.ts); no setting, flag or route selects a worker entry.
 */
import { closeSync, mkdirSync, openSync, symlinkSync, writeSync } from "node:fs";
import path from "node:path";
import type { DaemonToWorker, WorkerToDaemon } from "../../src/runner/tool-ipc-protocol.js";
import { attack, report, type AttackPlan } from "./sandbox-attacks.js";

// The real worker's message handler, taken aside so that only jobs without an attack reach it.
const real: Array<(msg: DaemonToWorker) => void> = [];
const on = process.on.bind(process);
process.on = ((event: string, listener: (...args: any[]) => void) =>
  event === "message" ? (real.push(listener), process) : on(event, listener)) as typeof process.on;
await import("../../src/runner/model-tool-worker.js");
process.on = on;

function send(message: WorkerToDaemon, then: () => void): void {
  process.send!(message, () => then());
}

/** Writes `mib` MiB to `file`, then does nothing more. */
function fill(file: string, mib: number): void {
  const chunk = Buffer.alloc(1024 * 1024, 7);
  const fd = openSync(file, "w");
  for (let i = 0; i < mib; i++) writeSync(fd, chunk);
  closeSync(fd);
}

let fillOnProceed: string | undefined;

on("message", (msg: DaemonToWorker) => {
  const job = msg.type === "start" ? msg.job : undefined;
  if (job?.kind === "eval" && job.text.startsWith("#attack ")) {
    void attack(JSON.parse(job.text.slice(8)) as AttackPlan).then((r) => {
      report("sandbox-probe", r);
      send({ type: "error", kind: "failed", message: "attacked" }, () => process.exit(1));
    });
    return;
  }
  if (job?.kind === "imatrix" && job.text.startsWith("#link ")) {
    symlinkSync(job.text.slice(6).trim(), job.output);
    send({ type: "result", value: { entries: 1, chunks: 1, chunkSize: 1 } }, () => process.exit(0));
    return;
  }
  if (job?.kind === "imatrix" && job.text.startsWith("#fill ")) {
    const [mib, deep] = job.text.slice(6).split(" ");
    const folder = path.join(path.dirname(job.output), "deeper", "still");
    if (deep) mkdirSync(folder, { recursive: true });
    return fill(deep ? path.join(folder, "x") : job.output, Number(mib));
  }
  if (job?.kind === "quantize" && job.pure) {
    fillOnProceed = job.output;
    return send({ type: "estimate", bytes: Number.NaN, tensors: 1 }, () => undefined);
  }
  if (msg.type === "proceed" && fillOnProceed) return fill(fillOnProceed, 64);
  for (const handler of real) handler(msg);
});
