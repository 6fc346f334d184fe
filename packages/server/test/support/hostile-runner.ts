/**
 * A runner for the sandbox tests: the real runner (it imports src/runner/main.ts, so it loads models and generates
 * like any other) that also attacks its sandbox when a prompt tells it to, the way a hostile GGUF exploiting
 * llama.cpp would once it runs code in the runner:
 *
 * - `#attack <json>`: opens TCP connections, reads and writes files, signals processes and forks, as the JSON says
 *   (`AttackPlan`), and reports what happened as one `sandbox-probe <json>` warning in the daemon's log;
 * - `#allocate`: allocates memory until the kernel stops it (at most 2 GiB, so an unlimited runner gives up
 *   instead of filling the machine), reporting `sandbox-allocate <json>` if it survives.
 *
 * Only tests reach it: the daemon runs this file only when `startDaemon` is called in-process with
 * `options.runnerEntry` (test/support/daemon.ts); no setting, flag or route selects a runner entry.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import "../../src/runner/main.js";

export interface AttackPlan {
  /** TCP endpoints to connect to. */
  connect?: Array<{ host: string; port: number }>;
  /** Files to read. */
  read?: string[];
  /** Files to create. */
  write?: string[];
  /** Processes to signal (signal 0: "does it exist / may I?"). */
  signal?: number[];
  /** Processes to start (`sleep`), to see where the pids limit stops it. */
  fork?: number;
}

export interface AttackReport {
  connect: Array<{ target: string; result: string }>;
  read: Array<{ path: string; result: string }>;
  write: Array<{ path: string; result: string }>;
  signal: Array<{ pid: number; result: string }>;
  fork: { asked: number; started: number; error: string | null } | null;
  uid: number;
}

function report(kind: string, value: unknown): void {
  process.send?.({ type: "log", level: "warn", message: `${kind} ${JSON.stringify(value)}` });
}

function connect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (result: string) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(5000, () => done("timeout"));
    socket.once("connect", () => done("connected"));
    socket.once("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

function attempt(fn: () => void): string {
  try {
    fn();
    return "ok";
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

async function forkMany(count: number): Promise<NonNullable<AttackReport["fork"]>> {
  const children: ChildProcess[] = [];
  let error: string | null = null;
  for (let i = 0; i < count && !error; i++) {
    const child = spawn("/bin/sleep", ["30"], { stdio: "ignore" });
    if (child.pid === undefined) {
      error = await new Promise<string>((resolve) =>
        child.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message)),
      );
      break;
    }
    children.push(child);
  }
  for (const child of children) child.kill("SIGKILL");
  return { asked: count, started: children.length, error };
}

async function attack(plan: AttackPlan): Promise<void> {
  const out: AttackReport = { connect: [], read: [], write: [], signal: [], fork: null, uid: process.getuid?.() ?? -1 };
  for (const { host, port } of plan.connect ?? [])
    out.connect.push({ target: `${host}:${port}`, result: await connect(host, port) });
  for (const path of plan.read ?? []) out.read.push({ path, result: attempt(() => readFileSync(path)) });
  for (const path of plan.write ?? []) out.write.push({ path, result: attempt(() => writeFileSync(path, "pwned")) });
  for (const pid of plan.signal ?? []) out.signal.push({ pid, result: attempt(() => process.kill(pid, 0)) });
  if (plan.fork) out.fork = await forkMany(plan.fork);
  report("sandbox-probe", out);
}

function allocate(): void {
  const hog: Buffer[] = [];
  let bytes = 0;
  while (bytes < 2 * 1024 ** 3) {
    hog.push(Buffer.alloc(16 * 1024 * 1024, 1)); // filled, so every page is really used
    bytes += 16 * 1024 * 1024;
  }
  report("sandbox-allocate", { survived: true, bytes });
}

process.on("message", (msg: { type?: string; params?: { prompt?: unknown } }) => {
  const prompt = msg?.type === "generate" && typeof msg.params?.prompt === "string" ? msg.params.prompt : "";
  // After the real runner has started the generation, so the request is in flight when the runner dies.
  if (prompt.startsWith("#attack ")) setImmediate(() => void attack(JSON.parse(prompt.slice(8)) as AttackPlan));
  else if (prompt.startsWith("#allocate")) setImmediate(allocate);
});
