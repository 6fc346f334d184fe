import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root, from this file's location (packages/cli/test/helpers). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

/** The real stories260K model, shared outside the repository. */
export const STORIES_GGUF = path.resolve(REPO_ROOT, "../shared/models/stories260K.gguf");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI from source as a child process, asynchronously (the daemon under test runs in this process, so a
 * blocking spawn would deadlock it).
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--conditions=llmos-source", "--import", "tsx", "packages/cli/src/main.ts", ...args],
      { cwd: REPO_ROOT, env, stdio: ["pipe", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

/** The environment for a CLI child: the daemon's URL and home, no inherited llmos settings. */
export function cliEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of ["LLMOS_API_KEY", ...(extra["LLMOS_HOST"] ? [] : ["LLMOS_HOST"])]) if (!(k in extra)) delete env[k];
  return env;
}

interface DaemonModule {
  startDaemon(config: Record<string, unknown>): Promise<{ url: string; close(): Promise<void> }>;
}

/** Loads `startDaemon` from `@llmos/server`, or returns why it is not available yet. */
export async function loadDaemonModule(): Promise<DaemonModule | string> {
  try {
    const specifier = "@llmos/server";
    const mod = (await import(specifier)) as Partial<DaemonModule>;
    if (typeof mod.startDaemon !== "function") return "@llmos/server does not export startDaemon yet";
    return mod as DaemonModule;
  } catch (error) {
    return `@llmos/server cannot be loaded: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** Starts a real daemon with a temp home on a random port; `close()` stops it and removes the home. */
export async function startTestDaemon(mod: DaemonModule): Promise<{ url: string; home: string; close(): Promise<void> }> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "llmos-cli-test-"));
  const daemon = await mod.startDaemon({
    home,
    port: 0,
    threads: 1,
    host: "127.0.0.1",
    logLevel: "error",
    // A small context bounds requests without max_tokens (the seed example) to seconds on stories260K.
    contextSize: 512,
    parallel: 2,
  });
  return {
    url: daemon.url,
    home,
    async close() {
      await daemon.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Serves one file over loopback HTTP (HEAD and single ranges), as a download host for `pull`. */
export async function serveFile(file: string): Promise<{ url: string; close(): Promise<void> }> {
  const http = await import("node:http");
  const data = fs.readFileSync(file);
  const server = http.createServer((req, res) => {
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
    res.setHeader("accept-ranges", "bytes");
    res.setHeader("content-length", String(end - start + 1));
    if (range) {
      res.statusCode = 206;
      res.setHeader("content-range", `bytes ${start}-${end}/${data.length}`);
    }
    res.end(req.method === "HEAD" ? undefined : data.subarray(start, end + 1));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as import("node:net").AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/${path.basename(file)}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
