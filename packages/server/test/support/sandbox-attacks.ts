/**
 * What a hostile process does once it runs code inside a sandbox (a runner or a model-tool worker a crafted GGUF took
 * over): connect, read, write, signal and fork as an `AttackPlan` says, and report what happened (sandbox tests).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import net from "node:net";

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

export function report(kind: string, value: unknown): void {
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

export async function attack(plan: AttackPlan): Promise<AttackReport> {
  const out: AttackReport = { connect: [], read: [], write: [], signal: [], fork: null, uid: process.getuid?.() ?? -1 };
  for (const { host, port } of plan.connect ?? [])
    out.connect.push({ target: `${host}:${port}`, result: await connect(host, port) });
  for (const path of plan.read ?? []) out.read.push({ path, result: attempt(() => readFileSync(path)) });
  for (const path of plan.write ?? []) out.write.push({ path, result: attempt(() => writeFileSync(path, "pwned")) });
  for (const pid of plan.signal ?? []) out.signal.push({ pid, result: attempt(() => process.kill(pid, 0)) });
  if (plan.fork) out.fork = await forkMany(plan.fork);
  return out;
}
