/**
 * A real cluster on loopback for end-to-end tests: one throwaway PostgreSQL and N `llmos serve --cluster` processes
 * (the built CLI, `packages/cli/bin/llmos.js`: `npm test` builds first), each with its own home, port, memory
 * budget and one thread. Nodes are OS processes so tests can `kill -9` or `kill -STOP` them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { MODELS_DIR, REPO_ROOT } from "./paths.js";
import { startTestPostgres, type TestPostgres } from "./postgres.js";

export const CLUSTER_SECRET = "test-cluster-secret-0123456789";
const CLI = path.join(REPO_ROOT, "packages/cli/bin/llmos.js");

export interface ClusterNodeProcess {
  name: string;
  url: string;
  home: string;
  process: ChildProcess;
  /** Log lines (JSON) the node wrote. */
  logs: string[];
  /** The environment it runs with (for CLI calls against its home). */
  env: NodeJS.ProcessEnv;
}

export interface NodeSpec {
  name: string;
  /** LLMOS_MEMORY_BUDGET, e.g. "64M". */
  budget?: string;
  /** Models to import into the node's store before it starts: [file, name]. */
  models?: Array<[string, string]>;
  env?: Record<string, string>;
}

export interface TestCluster {
  postgres: TestPostgres;
  databaseUrl: string;
  nodes: ClusterNodeProcess[];
  /** Milliseconds from spawning the nodes to every one answering /readyz (PostgreSQL's start not counted). */
  nodesUpMs: number;
  node(name: string): ClusterNodeProcess;
  /** Starts a node (again: same home, same port). */
  start(spec: NodeSpec): Promise<ClusterNodeProcess>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts PostgreSQL and the nodes (in parallel). */
export async function startTestCluster(specs: NodeSpec[], extraEnv: Record<string, string> = {}): Promise<TestCluster> {
  if (!existsSync(path.join(REPO_ROOT, "packages/cli/dist/src/main.js")))
    throw new Error("the cluster tests run the built CLI: run `npm run build` first");
  const postgres = await startTestPostgres();
  const databaseUrl = await postgres.createDatabase("cluster");
  const nodes: ClusterNodeProcess[] = [];
  const ports = new Map<string, number>();
  const homes = new Map<string, string>();

  const start = async (spec: NodeSpec): Promise<ClusterNodeProcess> => {
    const port = ports.get(spec.name) ?? (await freePort());
    ports.set(spec.name, port);
    let home = homes.get(spec.name);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      LLMOS_THREADS: "1",
      LLMOS_LOG_LEVEL: "info",
      LLMOS_CLUSTER_SECRET: CLUSTER_SECRET,
      LLMOS_CONTEXT_SIZE: "512",
      // The models the tests import by path live beside the checkout.
      LLMOS_IMPORT_DIRS: [...new Set((spec.models ?? []).map(([file]) => path.dirname(file)))].join(",") || MODELS_DIR,
      ...extraEnv,
      ...spec.env,
      ...(spec.budget ? { LLMOS_MEMORY_BUDGET: spec.budget } : {}),
    };
    delete env.LLMOS_HOST;
    delete env.LLMOS_API_KEY;
    if (!home) {
      home = mkdtempSync(path.join(tmpdir(), `llmos-node-${spec.name}-`));
      homes.set(spec.name, home);
    }
    env.LLMOS_HOME = home;
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(
      process.execPath,
      [
        CLI,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--cluster",
        databaseUrl,
        "--node-name",
        spec.name,
        "--advertise",
        url,
      ],
      { env, stdio: ["ignore", "pipe", "pipe"] },
    );
    const logs: string[] = [];
    const collect = (d: Buffer) => {
      logs.push(...d.toString().split("\n").filter(Boolean));
      if (process.env.LLMOS_TEST_LOGS) process.stderr.write(`[${spec.name}] ${d.toString()}`);
    };
    child.stdout!.on("data", collect);
    child.stderr!.on("data", collect);
    const node: ClusterNodeProcess = { name: spec.name, url, home, process: child, logs, env };
    const end = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`node ${spec.name} exited: ${logs.slice(-10).join("\n")}`);
      try {
        if ((await fetch(`${url}/readyz`)).ok) break;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > end) throw new Error(`node ${spec.name} did not start: ${logs.slice(-10).join("\n")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    lastReady = Math.max(lastReady, Date.now());
    for (const [file, name] of spec.models ?? []) {
      // Before any key exists, a loopback client needs none.
      const r = await fetch(`${url}/api/models/import`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ path: file, name }),
      });
      if (!r.ok) throw new Error(`import on ${spec.name} failed: ${await r.text()}`);
    }
    const i = nodes.findIndex((n) => n.name === spec.name);
    if (i >= 0) nodes[i] = node;
    else nodes.push(node);
    return node;
  };

  const t0 = Date.now();
  let lastReady = t0;
  try {
    await Promise.all(specs.map(start));
  } catch (error) {
    for (const n of nodes) n.process.kill("SIGKILL");
    await postgres.stop();
    throw error;
  }
  return {
    postgres,
    databaseUrl,
    nodes,
    nodesUpMs: lastReady - t0,
    node: (name) => nodes.find((n) => n.name === name)!,
    start,
    async stop() {
      await Promise.all(
        nodes.map(
          (n) =>
            new Promise<void>((resolve) => {
              if (n.process.exitCode !== null || n.process.signalCode !== null) return resolve();
              n.process.kill("SIGCONT");
              n.process.once("exit", () => resolve());
              n.process.kill("SIGTERM");
              setTimeout(() => n.process.kill("SIGKILL"), 15_000).unref();
            }),
        ),
      );
      await postgres.stop();
      for (const home of homes.values()) rmSync(home, { recursive: true, force: true });
    },
  };
}
