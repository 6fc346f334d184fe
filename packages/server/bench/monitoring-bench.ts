/**
 * The cost of watching: p50 latency of hot requests with and without a dashboard's event stream connected
 * (`GET /api/events`, read as the dashboard reads it), in the same rounds, alternating which goes first.
 */
import http from "node:http";
import type { Daemon } from "../src/daemon.js";
import { request } from "./http-client.js";
import { median, pairedRatio, settle } from "./stats.js";

export interface MonitoringBench {
  model: string;
  rounds: number;
  requestsPerRound: number;
  tokens: number;
  /** p50 request latency per round, ms. */
  p50WithoutMs: number[];
  p50WithMs: number[];
  /** Median over rounds of (p50 with a stream) / (p50 without): the target is at most 1.02. */
  ratio: number | undefined;
  /** Event-stream bytes the connected client received. */
  streamBytes: number;
}

async function hotRequest(base: string, model: string, tokens: number): Promise<number> {
  const t0 = performance.now();
  const res = await request(`${base}/v1/completions`, {
    model,
    prompt: "Once upon a time",
    max_tokens: tokens,
    temperature: 0,
    ignore_eos: true,
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  await res.text();
  return performance.now() - t0;
}

/** An event-stream client that reads and discards, as an open dashboard tab does. */
function openStream(base: string, onBytes: (n: number) => void): Promise<() => void> {
  const u = new URL(`${base}/api/events`);
  return new Promise((resolve, reject) => {
    const req = http.get({ host: u.hostname, port: u.port, path: u.pathname }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`event stream: HTTP ${res.statusCode}`));
      res.on("data", (b: Buffer) => onBytes(b.length));
      // The first snapshot arrives before the requests start.
      res.once("data", () => resolve(() => req.destroy()));
    });
    req.on("error", (e) => ((e as { code?: string }).code === "ECONNRESET" ? undefined : reject(e)));
  });
}

export async function monitoringOverhead(
  d: Daemon,
  model: string,
  tokens: number,
  rounds: number,
  requestsPerRound: number,
): Promise<MonitoringBench> {
  for (let i = 0; i < 3; i++) await hotRequest(d.url, model, tokens); // load and warm
  const without: number[] = [];
  const withStream: number[] = [];
  let streamBytes = 0;
  const series = async () => {
    const xs: number[] = [];
    for (let i = 0; i < requestsPerRound; i++) xs.push(await hotRequest(d.url, model, tokens));
    return median(xs);
  };
  for (let r = 0; r < rounds; r++) {
    const watched = async () => {
      const close = await openStream(d.url, (n) => (streamBytes += n));
      try {
        withStream.push(await series());
      } finally {
        close();
      }
    };
    const plain = async () => without.push(await series());
    for (const step of r % 2 === 0 ? [plain, watched] : [watched, plain]) {
      await settle();
      await step();
    }
  }
  return {
    model,
    rounds,
    requestsPerRound,
    tokens,
    p50WithoutMs: without,
    p50WithMs: withStream,
    ratio: pairedRatio(withStream, without),
    streamBytes,
  };
}
