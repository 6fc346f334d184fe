/**
 * The cluster section of `npm run bench`, on one machine: three nodes (one thread each) on one PostgreSQL against
 * the same three models on three independent daemons behind round-robin, and the forwarding overhead of a request
 * sent to a node that does not run it against the same request sent straight to the node that does.
 *
 * Fair by construction: both setups run the same three models (one file under three names), with the same threads
 * per daemon, context, slots and memory budget (SETTINGS), and the same client (node:http with keep-alive, as load
 * generators use). The report says where the cluster placed the models and which node served the requests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ClusterStatus } from "@llmos/protocol";
import { homePaths } from "../src/config/config.js";
import { startTestCluster } from "../test/support/cluster.js";
import { builtHereCpuBackendDir } from "./native-bench.js";
import { postgresBinDir } from "../test/support/postgres.js";
import { REPO_ROOT } from "../test/support/paths.js";
import { request } from "./http-client.js";
import { percentile, spread, type Spread } from "./stats.js";

export interface ClusterBench {
  model: string;
  /** The model the forwarding overhead was timed on (the same as `model` when none was given). */
  hopModel?: string;
  /** Requests of the forwarded series that did not run on the node they were meant to reach (should be 0). */
  forwardedElsewhere?: number;
  requests: number;
  clients: number;
  tokens: number;
  /** Aggregate generated tokens per second. */
  clusterTokensPerSecond: Spread;
  roundRobinTokensPerSecond: Spread;
  /** p50 latency of a 1-token request, ms: straight to the node that runs it, and through another node. */
  directP50Ms: number;
  forwardedP50Ms: number;
  /** Where the cluster had each model loaded after the load runs (node names per model). */
  placement?: Record<string, string[]>;
  /** Requests of the measured runs per node that ran them (x-llmos-node). */
  servedBy?: Record<string, number>;
}

const MODELS = ["m1", "m2", "m3"];

/** The settings both setups run with (one thread per daemon, as the issue asks). */
const SETTINGS = {
  LLMOS_THREADS: "1",
  LLMOS_CONTEXT_SIZE: "512",
  LLMOS_NUM_PARALLEL: "4",
  LLMOS_MEMORY_BUDGET: "2G",
  LLMOS_LOG_LEVEL: "warn",
  // Every daemon on the same CPU backend (the one built here, as the rest of the bench uses), and none building
  // one in the background on its fresh home: six compilers would share the cores with the measurement.
  LLMOS_CPU_BACKEND: builtHereCpuBackendDir() ?? "shipped",
  LLMOS_CPU_BACKEND_BUILD: "off",
};

/** Nodes that served requests (x-llmos-node), counted while a cluster run is measured. */
let servedBy: Record<string, number> | undefined;

async function generate(url: string, model: string, prompt: string, tokens: number): Promise<number> {
  const res = await request(`${url}/api/generate`, {
    model,
    prompt,
    stream: false,
    options: { num_predict: tokens, temperature: 0 },
  });
  const json = await res.json<{ eval_count?: number; error?: unknown }>();
  if (!res.ok) throw new Error(`generate on ${url} failed: ${JSON.stringify(json)}`);
  if (servedBy && res.node) servedBy[res.node] = (servedBy[res.node] ?? 0) + 1;
  return json.eval_count ?? 0;
}

/**
 * Aggregate tokens/s of `requests` requests from `clients` clients, request i to urls[i % n] (round-robin) for
 * model `modelOf(i)`. The model does not follow the entry point: over nine requests every model reaches every entry
 * point once, as when users pick models and a load balancer picks daemons. (With MODELS[i % 3] each independent
 * daemon saw only one model: round-robin that is secretly model-affine.)
 */
function modelOf(i: number): string {
  return MODELS[(i + Math.floor(i / MODELS.length)) % MODELS.length]!;
}

async function load(urls: string[], requests: number, clients: number, tokens: number): Promise<number> {
  let next = 0;
  let generated = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = next++; i < requests; i = next++)
        generated += await generate(urls[i % urls.length]!, modelOf(i), `Once upon a time ${i}`, tokens);
    }),
  );
  return generated / ((performance.now() - t0) / 1000);
}

async function importModels(url: string, file: string, names: readonly string[] = MODELS): Promise<void> {
  for (const name of names) {
    const r = await fetch(`${url}/api/models/import`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ path: file, name }),
    });
    if (!r.ok) throw new Error(`import failed: ${await r.text()}`);
  }
}

/** Three plain daemons (no cluster), each its own process, home and port. */
async function startIndependent(n: number, modelFile: string): Promise<{ urls: string[]; stop: () => Promise<void> }> {
  const procs: ChildProcess[] = [];
  const homes: string[] = [];
  const urls: string[] = [];
  for (let i = 0; i < n; i++) {
    const home = mkdtempSync(path.join(tmpdir(), "llmos-bench-rr-"));
    homes.push(home);
    const port = 12600 + Math.floor(Math.random() * 2000) + i;
    const child = spawn(
      process.execPath,
      [path.join(REPO_ROOT, "packages/cli/bin/llmos.js"), "serve", "--host", "127.0.0.1", "--port", String(port)],
      {
        env: {
          ...process.env,
          ...SETTINGS,
          LLMOS_HOME: home,
          LLMOS_IMPORT_DIRS: path.dirname(modelFile),
        },
        stdio: "ignore",
      },
    );
    procs.push(child);
    urls.push(`http://127.0.0.1:${port}`);
  }
  for (const url of urls) {
    for (let t = 0; ; t++) {
      try {
        if ((await fetch(`${url}/readyz`)).ok) break;
      } catch {
        /* starting */
      }
      if (t > 600) throw new Error(`daemon ${url} did not start`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    urls,
    stop: async () => {
      await Promise.all(
        procs.map(
          (p) => new Promise<void>((r) => (p.exitCode !== null ? r() : (p.once("exit", () => r()), p.kill("SIGTERM")))),
        ),
      );
      for (const h of homes) rmSync(h, { recursive: true, force: true });
    },
  };
}

/** Undefined (with a log line) when PostgreSQL is not installed. */
export async function clusterBench(
  modelFile: string,
  modelName: string,
  opts: {
    quick: boolean;
    log: (line: string) => void;
    /**
     * A tiny model (stories260K) the forwarding overhead is timed on: one hop's cost. On one machine a model that
     * computes for milliseconds shares the cores with the hop's own work (three nodes and the client on two cores),
     * which adds contention a real network of machines does not have: +2.0 ms there against +1.4 ms on the tiny one.
     */
    hopModelFile?: string;
  },
): Promise<ClusterBench | undefined> {
  if (!postgresBinDir()) {
    opts.log("cluster: PostgreSQL is not installed, section skipped");
    return undefined;
  }
  const reps = opts.quick ? 2 : 6;
  const requests = opts.quick ? 27 : 120;
  const clients = 6;
  const tokens = 32;
  const overheadReps = opts.quick ? 20 : 200;

  // Both setups up at once and measured in alternating rounds, so that a drift of the machine's load (other
  // processes, caches, thermal) weighs on both alike.
  opts.log("cluster: 3 independent daemons behind round-robin, and 3 nodes on one PostgreSQL");
  const rr = await startIndependent(3, modelFile);
  const roundRobin: number[] = [];
  const clustered: number[] = [];
  let direct: number[] = [];
  let forwardedElsewhere = 0;
  let forwarded: number[] = [];
  let placement: Record<string, string[]> | undefined;
  let served: Record<string, number> | undefined;
  let cluster: Awaited<ReturnType<typeof startTestCluster>> | undefined;
  try {
    for (const url of rr.urls) await importModels(url, modelFile);
    // Warm: every model loaded wherever it will run (each daemon gets every model once).
    await load(rr.urls, MODELS.length * rr.urls.length, 3, 1);
    cluster = await startTestCluster(
      ["n1", "n2", "n3"].map((name) => ({
        name,
        env: {
          ...SETTINGS,
          LLMOS_IMPORT_DIRS: [modelFile, opts.hopModelFile ?? modelFile]
            .map((f) => path.dirname(f))
            .join(path.delimiter),
        },
      })),
    );
    const urls = cluster.nodes.map((n) => n.url);
    for (const url of urls) await importModels(url, modelFile);
    const hop = opts.hopModelFile ? "hop" : "m1";
    if (opts.hopModelFile) for (const url of urls) await importModels(url, opts.hopModelFile, [hop]);
    await new Promise((r) => setTimeout(r, 2500)); // heartbeats publish the stores
    await load(urls, MODELS.length * urls.length, 3, 1);
    await new Promise((r) => setTimeout(r, 1500)); // ... and where the models loaded
    const counted: Record<string, number> = {};
    // The runs of one setup slow the next run of the other for a while (its runners' threads wind down after their
    // last request: measured, a run right after the other setup's was up to a third slower, whichever setup it was),
    // so each run starts after a pause, and each setup goes first every other round.
    const settle = () => new Promise((r) => setTimeout(r, 1500));
    const measureRoundRobin = async () => {
      await settle();
      roundRobin.push(await load(rr.urls, requests, clients, tokens));
    };
    const measureCluster = async () => {
      await settle();
      servedBy = counted;
      clustered.push(await load(urls, requests, clients, tokens));
      servedBy = undefined;
    };
    for (let r = 0; r < reps; r++) {
      if (r % 2 === 0) await measureRoundRobin();
      await measureCluster();
      if (r % 2 === 1) await measureRoundRobin();
    }
    served = counted;
    placement = await placementOf(cluster.nodes[0]!.url, cluster.nodes[0]!.home);
    opts.log(`cluster: models loaded on ${JSON.stringify(placement)}; requests served by ${JSON.stringify(served)}`);

    // Forwarding overhead: find where the hop model runs, then 1-token requests straight there and through another
    // node.
    const where = await request(`${urls[0]}/api/generate`, {
      model: hop,
      prompt: "Once",
      stream: false,
      options: { num_predict: 1 },
    });
    await where.text();
    const runner = cluster.node(where.node ?? "n1");
    const other = cluster.nodes.find((n) => n.name !== runner.name)!;
    const timeOne = async (url: string) => {
      const t0 = performance.now();
      await generate(url, hop, "Once upon a time", 1);
      return performance.now() - t0;
    };
    direct = [];
    forwarded = [];
    // Only what the runner's node served counts (a request the other node ran on a copy of its own is no hop).
    const hops: Record<string, number> = {};
    await new Promise((r) => setTimeout(r, 1500)); // the runner's heartbeat shows the model loaded
    for (let i = 0; i < overheadReps; i++) {
      direct.push(await timeOne(runner.url));
      servedBy = hops;
      forwarded.push(await timeOne(other.url));
      servedBy = undefined;
    }
    forwardedElsewhere = overheadReps - (hops[runner.name] ?? 0);
    if (forwardedElsewhere > 0)
      opts.log(
        `cluster: ${forwardedElsewhere} of ${overheadReps} "forwarded" requests ran elsewhere than ${runner.name}`,
      );
  } finally {
    await cluster?.stop();
    await rr.stop();
  }
  return {
    model: modelName,
    hopModel: opts.hopModelFile ? path.basename(opts.hopModelFile, ".gguf") : modelName,
    forwardedElsewhere,
    requests,
    clients,
    tokens,
    clusterTokensPerSecond: spread(clustered),
    roundRobinTokensPerSecond: spread(roundRobin),
    directP50Ms: percentile(direct, 50),
    forwardedP50Ms: percentile(forwarded, 50),
    ...(placement ? { placement } : {}),
    ...(served ? { servedBy: served } : {}),
  };
}

/** Model -> nodes with it loaded, from `GET /api/cluster` (with the node's admin token). */
async function placementOf(url: string, home: string): Promise<Record<string, string[]>> {
  const token = readFileSync(homePaths(home).adminToken, "utf8").trim();
  const res = await fetch(`${url}/api/cluster`, { headers: { authorization: `Bearer ${token}` } });
  const status = (await res.json()) as ClusterStatus;
  return Object.fromEntries(status.models.map((m) => [m.name, m.loadedOn]));
}
