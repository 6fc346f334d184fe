import { Worker } from "node:worker_threads";

/**
 * Ends this runner's process group when the daemon that started it is gone. The `disconnect` handler does that
 * too, but only while the main thread runs JavaScript: a runner deadlocked inside llama.cpp never gets to it. This
 * thread does, and checks once a second whether the parent process changed (the daemon died; the runner was
 * re-parented). The runner leads its process group, so the kill takes whatever it forked along.
 */
export function startOrphanGuard(): void {
  const worker = new Worker(
    `const { workerData } = require("node:worker_threads");
    setInterval(() => {
      if (process.ppid === workerData.parent) return;
      try { process.kill(-workerData.self, "SIGKILL"); } catch {}
      try { process.kill(workerData.self, "SIGKILL"); } catch {}
    }, 1000);`,
    { eval: true, workerData: { parent: process.ppid, self: process.pid } },
  );
  worker.unref();
}
