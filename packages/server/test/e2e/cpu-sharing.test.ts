/**
 * CPU sharing with real runners: two busy models each decoding with every core collapsed to a few tokens/s (their
 * ggml threads spin-wait for cores the other holds); the scheduler gives busy runners thread counts that add up
 * to the managed cores at most. Checked as a user sees it: `/api/ps` while models become busy and idle, `/metrics`,
 * and the text of streams running side by side. Behaviour only: no assertion on speed.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { allowedCpus } from "../../src/config/cpu-set.js";
import { AffinityCpuPlacement, processTree } from "../../src/runtime/cpu-placement.js";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { STORIES_GOLDEN } from "../support/paths.js";
import { slowModel } from "../support/synth.js";

interface PsCpu {
  name: string;
  cpu: { threads: number; cpus: number[] | null; shared: boolean; appliedAt: string | null; demand: number };
  stats: { decodeBatches: number; contendedBatches: number };
}

/** Every check of /api/ps also checks the allotments never add up to more than the managed cores. */
async function ps(d: TestDaemon): Promise<Record<string, PsCpu>> {
  const r = await api(d, "GET", "/api/ps");
  assert.equal(r.status, 200, r.text);
  const models = r.json.models as PsCpu[];
  const total = models.reduce((n, m) => n + m.cpu.threads, 0);
  assert.ok(total <= r.json.cpu.cpus.length, `allotted ${total} threads on ${r.json.cpu.cpus.length} cores`);
  assert.equal(r.json.cpu.allottedThreads, total);
  return Object.fromEntries(models.map((m) => [m.name.replace(/:latest$/, ""), m]));
}

/** Polls /api/ps until `want` holds (each poll checks the cores are never oversubscribed). */
async function until(
  d: TestDaemon,
  what: string,
  want: (p: Record<string, PsCpu>) => boolean,
): Promise<Record<string, PsCpu>> {
  const end = Date.now() + 30_000;
  for (;;) {
    const p = await ps(d);
    if (want(p)) return p;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(p)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A long streamed completion on `model`, read until aborted. */
function longStream(d: TestDaemon, model: string): { stop: () => Promise<void>; tokens: () => number } {
  const abort = new AbortController();
  let chunks = 0;
  const done = (async () => {
    const res = await fetch(`${d.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model,
        prompt: "Once upon a time",
        max_tokens: 3000,
        temperature: 0,
        ignore_eos: true,
        stream: true,
      }),
      signal: abort.signal,
    });
    assert.equal(res.status, 200);
    for await (const piece of res.body!) chunks += piece.length > 0 ? 1 : 0;
  })().catch((error: unknown) => {
    if ((error as Error).name !== "AbortError") throw error;
  });
  return {
    stop: async () => {
      abort.abort();
      await done;
    },
    tokens: () => chunks,
  };
}

describe("CPU shared among busy models (real runners, 2 cores)", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon({ threads: 2, cpus: [0, 1] });
    await d.store.importFile(await slowModel(), "slow-a");
    await d.store.copy("slow-a", "slow-b");
    await d.store.copy("stories", "stories-b");
  });
  after(async () => d?.stop());

  test("allotments in /api/ps follow which models are busy and never exceed the cores", async () => {
    for (const m of ["slow-a", "slow-b"]) assert.equal((await api(d, "POST", `/api/models/${m}/load`, {})).status, 200);
    let p = await ps(d);
    assert.equal(p["slow-a"]!.cpu.threads, 0, "an idle model gets no threads");

    const a = longStream(d, "slow-a");
    p = await until(d, "slow-a alone with both cores", (x) => x["slow-a"]!.cpu.threads === 2);
    assert.equal(p["slow-a"]!.cpu.shared, false);
    assert.equal(p["slow-b"]!.cpu.threads, 0);

    const b = longStream(d, "slow-b");
    p = await until(
      d,
      "one core each",
      (x) => x["slow-a"]!.cpu.threads === 1 && x["slow-b"]!.cpu.threads === 1 && x["slow-b"]!.cpu.appliedAt !== null,
    );
    assert.ok(p["slow-a"]!.cpu.shared && p["slow-b"]!.cpu.shared);
    // Both make progress side by side.
    const seen = { a: a.tokens(), b: b.tokens() };
    await until(d, "both streams advancing", () => a.tokens() > seen.a + 2 && b.tokens() > seen.b + 2);
    p = await until(d, "contended steps counted", (x) => x["slow-a"]!.stats.contendedBatches > 0);

    await b.stop();
    p = await until(
      d,
      "slow-a back to both cores, applied in its runner",
      (x) => x["slow-a"]!.cpu.threads === 2 && x["slow-a"]!.cpu.appliedAt !== null && x["slow-b"]!.cpu.threads === 0,
    );
    assert.equal(p["slow-a"]!.cpu.shared, false);
    const contended = p["slow-a"]!.stats.contendedBatches;
    await until(
      d,
      "slow-a decoding alone",
      (x) => x["slow-a"]!.stats.decodeBatches > p["slow-a"]!.stats.decodeBatches + 5,
    );
    const later = await ps(d);
    assert.ok(
      later["slow-a"]!.stats.contendedBatches - contended <= 1,
      "steps decoded alone are not counted as contended (one may have been under way)",
    );

    const metrics = await api(d, "GET", "/metrics");
    assert.match(metrics.text, /llmos_runner_threads\{model="slow-a:latest"\} 2/);
    assert.match(metrics.text, /llmos_cpu_cores 2/);
    const steps = /llmos_decode_steps_total\{model="slow-a:latest",contended="true"\} (\d+)/.exec(metrics.text);
    assert.ok(steps && Number(steps[1]) > 0, "contended decode steps are exported");

    await a.stop();
    await until(d, "both idle", (x) => x["slow-a"]!.cpu.threads === 0 && x["slow-b"]!.cpu.threads === 0);
    for (const m of ["slow-a", "slow-b"]) await api(d, "POST", `/api/models/${m}/unload`);
  });

  test("two models streaming at once (4 streams on one, one on the other) both finish with the right text", async () => {
    const client = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: "unused" });
    const stream = async (model: string) => {
      const s = await client.completions.create({
        model,
        prompt: "Once upon a time",
        max_tokens: 30,
        temperature: 0,
        stream: true,
      });
      let text = "";
      for await (const chunk of s) text += chunk.choices[0]?.text ?? "";
      return text;
    };
    const texts = await Promise.all([...Array.from({ length: 4 }, () => stream("stories")), stream("stories-b")]);
    // Four sequences batched together are not bit-identical to one alone; the story starts the same.
    for (const t of texts.slice(0, 4)) assert.ok(t.startsWith(", there was a little girl"), t);
    assert.ok(texts[4]!.startsWith(STORIES_GOLDEN), texts[4]);
    const p = await until(d, "both idle", (x) => x["stories"]!.cpu.threads === 0 && x["stories-b"]!.cpu.threads === 0);
    assert.ok(p["stories"]!.stats.decodeBatches > 0 && p["stories-b"]!.stats.decodeBatches > 0);
  });
});

/**
 * The CPUs every thread of runner `pid` may run on (`Cpus_allowed_list` of each), in every process of its tree: a
 * sandboxed runner's pid is bubblewrap's, and the node process that decodes runs below it.
 */
function threadAffinity(pid: number): Set<string> {
  const tree = processTree(pid);
  const node = (p: number) => readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0")[0] === process.execPath;
  assert.ok(tree.some(node), `a node process in the runner's tree: ${tree.join(" ")}`);
  return new Set(
    tree.flatMap((p) =>
      readdirSync(`/proc/${p}/task`).map(
        (tid) => /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${p}/task/${tid}/status`, "utf8"))![1]!,
      ),
    ),
  );
}

describe(
  "CPU sets with LLMOS_CPU_AFFINITY=on (real runners)",
  {
    skip:
      AffinityCpuPlacement.create([0, 1]).enforced && allowedCpus().includes(1)
        ? false
        : "needs Linux, taskset and 2 CPUs",
  },
  () => {
    let d: TestDaemon;
    before(async () => {
      d = await startTestDaemon({ threads: 2, cpus: [0, 1], cpuAffinity: true }, { importStories: false });
      await d.store.importFile(await slowModel(), "slow-a");
      await d.store.copy("slow-a", "slow-b");
    });
    after(async () => d?.stop());

    test("each busy runner's threads are pinned to its own CPUs", async () => {
      const a = longStream(d, "slow-a");
      let p = await until(
        d,
        "slow-a pinned to both CPUs",
        (x) => x["slow-a"]?.cpu.appliedAt != null && x["slow-a"].cpu.threads === 2,
      );
      assert.deepEqual(p["slow-a"]!.cpu.cpus, [0, 1]);
      const b = longStream(d, "slow-b");
      p = await until(
        d,
        "one CPU each",
        (x) =>
          x["slow-b"]?.cpu.threads === 1 && x["slow-b"].cpu.appliedAt != null && x["slow-a"]!.cpu.appliedAt != null,
      );
      const [ca, cb] = [p["slow-a"]!.cpu.cpus!, p["slow-b"]!.cpu.cpus!];
      assert.equal(ca.length, 1);
      assert.equal(cb.length, 1);
      assert.notEqual(ca[0], cb[0]);
      const pids = (await api(d, "GET", "/api/ps")).json.models.map((m: { name: string; runnerPid: number }) => [
        m.name,
        m.runnerPid,
      ]);
      const pidOf = (name: string) => pids.find(([n]: [string]) => n === `${name}:latest`)[1] as number;
      assert.deepEqual(threadAffinity(pidOf("slow-a")), new Set([String(ca[0])]), "every thread of slow-a");
      assert.deepEqual(threadAffinity(pidOf("slow-b")), new Set([String(cb[0])]), "every thread of slow-b");
      await b.stop();
      await a.stop();
    });
  },
);
