/**
 * Test helpers shared by the packages whose tests drive a real daemon from the outside (the SDK and the CLI).
 * `@llmos/server` is loaded at run time, so these packages do not depend on the server's types.
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The monorepo root: the nearest folder above this file whose package.json declares workspaces. */
function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    try {
      if ((JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { workspaces?: unknown }).workspaces)
        return dir;
    } catch {
      // no readable package.json here: keep walking up
    }
    if (path.dirname(dir) === dir) throw new Error(`no workspace root above ${from}`);
  }
}

export const REPO_ROOT = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));

/** The real stories260K model, shared outside the repository. */
export const STORIES_GGUF = path.resolve(REPO_ROOT, "../shared/models/stories260K.gguf");

/** What these helpers need of `@llmos/server`. */
export interface DaemonModule {
  startDaemon(config: Record<string, unknown>): Promise<{ url: string; close(): Promise<void> }>;
}

/** Loads `startDaemon` from `@llmos/server`, or returns why it is not available. */
export async function loadDaemonModule(): Promise<DaemonModule | string> {
  try {
    const specifier = "@llmos/server";
    const mod = (await import(specifier)) as Partial<DaemonModule>;
    if (typeof mod.startDaemon !== "function") return "@llmos/server does not export startDaemon";
    return mod as DaemonModule;
  } catch (error) {
    return `@llmos/server cannot be loaded: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** A real llmos daemon on a random loopback port with a temporary home. */
export interface TestDaemon {
  url: string;
  home: string;
  /** The local admin token (`<home>/admin.token`), when the daemon wrote one. */
  adminToken: string | undefined;
  /** Stops the daemon and removes its home. */
  close(): Promise<void>;
}

/** Starts a daemon (home in a temp dir, port 0, 1 thread, small contexts). The caller must `close()` it. */
export async function startTestDaemon(
  mod: DaemonModule,
  opts: { homePrefix?: string; config?: Record<string, unknown> } = {},
): Promise<TestDaemon> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), opts.homePrefix ?? "llmos-test-"));
  const daemon = await mod.startDaemon({
    home,
    port: 0,
    threads: 1,
    host: "127.0.0.1",
    logLevel: "error",
    // A small context bounds requests without max_tokens (the seed example) to seconds on stories260K.
    contextSize: 512,
    parallel: 2,
    // The shared test models may be imported by path (as an operator would allow a models folder).
    importDirs: [path.dirname(STORIES_GGUF)],
    // serveFile() hosts files on plain http on loopback.
    pullAllowHttp: ["127.0.0.1"],
    drainTimeoutMs: 3000,
    // No test daemon compiles the CPU backend in the background (the CLI's build test is the one build).
    cpuBackendBuild: "off",
    ...opts.config,
  });
  let adminToken: string | undefined;
  try {
    adminToken = fs.readFileSync(path.join(home, "admin.token"), "utf8").trim() || undefined;
  } catch {
    adminToken = undefined;
  }
  return {
    url: daemon.url,
    home,
    adminToken,
    async close() {
      await daemon.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * Serves one file over loopback HTTP with HEAD and single-range support, as a stand-in for a download host
 * (test daemons allow plain http to 127.0.0.1 through LLMOS_PULL_ALLOW_HTTP).
 */
export async function serveFile(file: string): Promise<{ url: string; close(): Promise<void> }> {
  const data = fs.readFileSync(file);
  const server = http.createServer((req, res) => {
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
    res.setHeader("accept-ranges", "bytes");
    res.setHeader("content-type", "application/octet-stream");
    res.setHeader("content-length", String(end - start + 1));
    if (range) {
      res.statusCode = 206;
      res.setHeader("content-range", `bytes ${start}-${end}/${data.length}`);
    }
    res.end(req.method === "HEAD" ? undefined : data.subarray(start, end + 1));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/${path.basename(file)}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
export * from "./fake-registry.js";
