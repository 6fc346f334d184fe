import fs from "node:fs";
import path from "node:path";
import { Client, type FetchLike } from "llmos";
import type { Command } from "commander";

/** What the CLI needs from `@llmos/server`, loaded lazily so that client commands start fast. */
export interface ServerModule {
  loadConfig(input: {
    env: NodeJS.ProcessEnv;
    flags?: {
      host?: string;
      port?: number;
      preload?: string[];
      insecureNoAuth?: boolean;
      tlsCert?: string;
      tlsKey?: string;
      cluster?: string;
      nodeName?: string;
      advertise?: string;
    };
  }): { home: string; host: string; port: number; cpuBackend: string } & Record<string, unknown>;
  startDaemon(config: Record<string, unknown>): Promise<{ url: string; close(): Promise<void> }>;
  cpuBackendDir(config: { home: string; cpuBackend: string }): string | null;
  buildCpuBackend(opts: {
    outDir: string;
    variant?: string;
    jobs?: number;
    workDir?: string;
    onProgress?: (p: { phase: string; percent?: number; message: string }) => void;
  }): Promise<{
    dir: string;
    seconds: number;
    manifest: { library: string; variant: string; release: string; compiler: string };
  }>;
}

/** Loads the server package (only `serve`, `build-cpu-backend` and the admin-token lookup need it). */
export async function loadServer(): Promise<ServerModule> {
  // A variable specifier keeps the heavy server graph out of the startup of every other command.
  const specifier = "@llmos/server";
  return (await import(specifier)) as ServerModule;
}

/** Options every command accepts (defined on the program). */
export interface GlobalOptions {
  host?: string;
  json?: boolean;
}

/** Shared services of one CLI invocation. */
export interface CliContext {
  /** The SDK client, authenticated with LLMOS_API_KEY or (on loopback) the local admin token. */
  client(): Promise<Client>;
  /** Writes a line to stdout. */
  print(text: string): void;
  /** Writes to stdout without a newline (streamed tokens). */
  write(text: string): void;
  /** Writes a line to stderr. */
  info(text: string): void;
  /** Writes a value as JSON to stdout. */
  printJson(value: unknown): void;
  /** Whether `--json` was given for this command. */
  json(cmd: Command): boolean;
  /** The process environment, passed on only to `loadConfig`. */
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

function isLoopback(host: string): boolean {
  const h = new URL(host).hostname.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\./.test(h);
}

/**
 * Creates the context. The client is created on first use with `LLMOS_API_KEY` (read by the SDK). Without a key,
 * on a loopback daemon, a request answered 401 is retried once with `<LLMOS_HOME>/admin.token` (home as the daemon's
 * config loader computes it; the daemon accepts that token from loopback only). Reading it lazily keeps the server
 * package out of the CLI's start-up while auth is off (no keys yet).
 */
export function createContext(program: Command, env: NodeJS.ProcessEnv): CliContext {
  let client: Client | undefined;
  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  return {
    env,
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    async client() {
      if (client) return client;
      const host = globals().host;
      const probe = new Client({ host });
      if (probe.hasApiKey || !isLoopback(probe.host)) return (client = probe);
      return (client = new Client({ host, fetch: adminTokenFetch(env) }));
    },
    print: (text) => void process.stdout.write(`${text}\n`),
    write: (text) => void process.stdout.write(text),
    info: (text) => void process.stderr.write(`${text}\n`),
    printJson: (value) => void process.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
    json: (cmd) => Boolean(cmd.optsWithGlobals<GlobalOptions>().json),
  };
}

/** A fetch that, after a 401, loads the local admin token and sends it (then on every later request). */
function adminTokenFetch(env: NodeJS.ProcessEnv): FetchLike {
  let token: Promise<string | undefined> | undefined;
  const withToken = (init: RequestInit, value: string): RequestInit => ({
    ...init,
    headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${value}` },
  });
  return async (url, init) => {
    if (token) {
      const value = await token;
      return fetch(url, value ? withToken(init, value) : init);
    }
    const response = await fetch(url, init);
    if (response.status !== 401) return response;
    token = readAdminToken(env);
    const value = await token;
    if (!value) return response;
    await response.body?.cancel();
    // The SDK sends JSON bodies as strings, so the request can be sent again as is.
    return fetch(url, withToken(init, value));
  };
}
async function readAdminToken(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  let home: string;
  try {
    home = (await loadServer()).loadConfig({ env }).home;
  } catch {
    return undefined;
  }
  try {
    return fs.readFileSync(path.join(home, "admin.token"), "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}
