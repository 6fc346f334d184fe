import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root, from this file's location (packages/sdk/test/helpers). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

/** The real stories260K model, shared outside the repository. */
export const STORIES_GGUF = path.resolve(REPO_ROOT, "../shared/models/stories260K.gguf");

/** A real llmos daemon on a random loopback port with a temporary home. */
export interface TestDaemon {
  url: string;
  home: string;
  /** The local admin token (`<home>/admin.token`), when the daemon wrote one. */
  adminToken: string | undefined;
  close(): Promise<void>;
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

/** Starts a daemon (home in a temp dir, port 0, 1 thread). The caller must `close()` it. */
export async function startTestDaemon(mod: DaemonModule): Promise<TestDaemon> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "llmos-sdk-test-"));
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
 * (the daemon pulls plain http URLs from loopback only).
 */
export async function serveFile(file: string): Promise<{ url: string; close(): Promise<void> }> {
  const http = await import("node:http");
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
  const port = (server.address() as import("node:net").AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/${path.basename(file)}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
