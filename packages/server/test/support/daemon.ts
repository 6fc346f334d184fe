import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { startDaemon, type Daemon, type DaemonConfigInput, type DaemonOptions } from "../../src/daemon.js";
import { STORIES } from "./paths.js";
import { TEST_ENGINE, TEST_SANDBOX } from "./test-engine.js";

export { TEST_ENGINE, TEST_SANDBOX } from "./test-engine.js";

export interface TestDaemon extends Daemon {
  home: string;
  /** A folder beside the home that the daemon allows imports from (LLMOS_IMPORT_DIRS): write test files here. */
  filesDir: string;
  /** Log lines the daemon wrote (JSON). */
  logs: string[];
  stop(): Promise<void>;
}

/** Starts a real daemon on a free loopback port with its own temp LLMOS_HOME. */
export async function startTestDaemon(
  config: DaemonConfigInput = {},
  opts: { importStories?: string | false; options?: DaemonOptions } = {},
): Promise<TestDaemon> {
  const home = mkdtempSync(path.join(os.tmpdir(), "llmos-test-"));
  const filesDir = `${home}-files`;
  mkdirSync(filesDir, { recursive: true });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(...String(chunk).split("\n").filter(Boolean));
      if (process.env.LLMOS_TEST_LOGS) process.stderr.write(chunk);
      cb();
    },
  });
  const daemon = await startDaemon(
    {
      home,
      port: 0,
      threads: 1,
      logLevel: "info",
      gpu: "off",
      keepAliveMs: 5 * 60_000,
      contextSize: 512,
      parallel: 4,
      engine: TEST_ENGINE,
      // Tests stop daemons often: a request left running must not hold a stop for the default 30 s.
      drainTimeoutMs: 3000,
      importDirs: [filesDir],
      sandbox: TEST_SANDBOX,
      // No test daemon compiles the CPU backend (the one build in the suite is the CLI's).
      cpuBackendBuild: "off",
      ...config,
    },
    { logDestination: sink, ...opts.options },
  );
  const name = opts.importStories === undefined ? "stories" : opts.importStories;
  if (name) await daemon.store.importFile(STORIES, name);
  return Object.assign(daemon, {
    home,
    filesDir,
    logs,
    stop: async () => {
      await daemon.close();
      rmSync(home, { recursive: true, force: true });
      rmSync(filesDir, { recursive: true, force: true });
    },
  });
}

/** Headers that carry the daemon's local admin token (what the CLI sends on admin routes). */
export function adminHeaders(d: { home: string }): Record<string, string> {
  const token = readFileSync(path.join(d.home, "admin.token"), "utf8").trim();
  return { authorization: `Bearer ${token}` };
}

/** JSON request helper. */
export async function api(
  d: { url: string },
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await fetch(d.url + url, {
    method,
    headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}
