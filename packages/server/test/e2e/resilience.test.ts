import assert from "node:assert/strict";
import { writeFileSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { STORIES, STORIES_GOLDEN, TINY_RANDOM } from "../support/paths.js";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { slowModel } from "../support/synth.js";

/** Reads an SSE stream, calling onEvent per data payload; resolves with all text and whether it ended in an error. */
async function readSse(res: Response, onEvent?: (data: any) => void) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let text = "";
  let error: any;
  let done = false;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) !== -1) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = frame.replace(/^data: /, "");
      if (data === "[DONE]") {
        done = true;
        continue;
      }
      const json = JSON.parse(data);
      if (json.error) error = json.error;
      text += json.choices?.[0]?.text ?? json.choices?.[0]?.delta?.content ?? "";
      onEvent?.(json);
    }
  }
  return { text, error, done };
}

function streamRequest(d: TestDaemon, body: Record<string, unknown>, signal?: AbortSignal) {
  return fetch(`${d.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ stream: true, ...body }),
    ...(signal ? { signal } : {}),
  });
}

async function ps(d: TestDaemon) {
  return (await api(d, "GET", "/api/ps")).json;
}

async function waitFor<T>(fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("runtime resilience (real runners)", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon();
    await d.store.importFile(TINY_RANDOM, "tiny");
    // A model slow enough (~100-300 tokens/s) that a stream is still running when the test acts on it.
    await d.store.importFile(await slowModel(), "slow");
  });
  after(async () => d?.stop());

  test("hostile GGUF files are rejected on import; the daemon is unaffected", async () => {
    const good = readFileSync(STORIES);
    const cases: Record<string, Buffer> = {
      truncated: good.subarray(0, 24),
      "truncated-mid-data": good.subarray(0, Math.floor(good.length / 2)),
      "wrong-magic": Buffer.concat([Buffer.from("GGML"), good.subarray(4)]),
      "huge-tensor-count": (() => {
        const b = Buffer.from(good);
        b.writeBigUInt64LE(1n << 60n, 8);
        return b;
      })(),
    };
    for (const [name, data] of Object.entries(cases)) {
      const file = path.join(d.filesDir, `${name}.gguf`);
      writeFileSync(file, data);
      const r = await api(d, "POST", "/api/models/import", { path: file, name: `bad-${name}` });
      assert.equal(r.status, 400, `${name}: ${r.text}`);
      assert.equal(r.json.error.code, "invalid_model_file", name);
      assert.ok(r.json.error.message.length > 10);
    }
    const list = await api(d, "GET", "/api/models");
    assert.deepEqual(list.json.models.map((m: any) => m.name).sort(), ["slow:latest", "stories:latest", "tiny:latest"]);
    const ok = await api(d, "POST", "/v1/completions", {
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 20,
      temperature: 0,
    });
    assert.equal(ok.status, 200);
  });

  test("kill -9 of a runner mid-stream: that stream errors, the next request succeeds, other models unaffected", async () => {
    // Load the other model first so we can check it survives.
    assert.equal((await api(d, "POST", "/api/models/tiny/load", {})).status, 200);
    const res = await streamRequest(d, {
      model: "slow",
      prompt: "Once upon a time",
      max_tokens: 2000,
      temperature: 0,
      ignore_eos: true,
    });
    assert.equal(res.status, 200);
    let killed = false;
    const result = await readSse(res, () => {
      if (killed) return;
      killed = true;
      void ps(d).then((p) => {
        const pid = p.models.find((m: any) => m.name === "slow:latest").runnerPid;
        process.kill(pid, "SIGKILL");
      });
    });
    assert.ok(killed);
    assert.equal(result.done, false, "stream must not claim success");
    assert.equal(result.error?.code, "runner_crashed");
    const tinyBefore = (await ps(d)).models.find((m: any) => m.name === "tiny:latest");
    assert.ok(tinyBefore, "the other model is still loaded");
    const again = await api(d, "POST", "/v1/completions", {
      model: "slow",
      prompt: "Once upon a time",
      max_tokens: 5,
      temperature: 0,
      ignore_eos: true,
    });
    assert.equal(again.status, 200, "a fresh runner serves the next request");
    assert.equal(again.json.usage.completion_tokens, 5);
    const stories = await api(d, "POST", "/v1/completions", {
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 20,
      temperature: 0,
    });
    assert.ok(stories.json.choices[0].text.startsWith(STORIES_GOLDEN.slice(0, 30)));
    const tiny = await api(d, "POST", "/v1/completions", { model: "tiny", prompt: "hello", max_tokens: 5 });
    assert.equal(tiny.status, 200);
    const tinyAfter = (await ps(d)).models.find((m: any) => m.name === "tiny:latest");
    assert.equal(tinyAfter.runnerPid, tinyBefore.runnerPid, "tiny's runner was not restarted");
  });

  test("a client that disconnects mid-stream frees its slot", async () => {
    const controller = new AbortController();
    // A long generation: the slow model, no token limit, end-of-text ignored (the context ends it).
    const res = await streamRequest(
      d,
      { model: "slow", prompt: "Once upon a time", temperature: 0, ignore_eos: true },
      controller.signal,
    );
    const reader = res.body!.getReader();
    await reader.read();
    const busy = await waitFor(async () =>
      (await ps(d)).models.find((m: any) => m.name === "slow:latest")?.slotsBusy === 1 ? true : undefined,
    );
    assert.ok(busy);
    controller.abort();
    await waitFor(
      async () => ((await ps(d)).models.find((m: any) => m.name === "slow:latest")?.slotsBusy === 0 ? true : undefined),
      5000,
    );
    const done = (await api(d, "GET", "/metrics")).text;
    assert.match(done, /llmos_generations_total\{model="slow:latest",reason="cancelled"\} [1-9]/);
  });

  test("four concurrent requests to one model are batched and all complete", async () => {
    assert.equal((await api(d, "POST", "/api/models/stories/load", { contextSize: 512, parallel: 4 })).status, 200);
    const psNow = await ps(d);
    const entry = psNow.models.find((m: any) => m.name === "stories:latest");
    assert.ok(entry, `stories not loaded: ${JSON.stringify(psNow)} ${d.logs.slice(-8).join("\n")}`);
    const before = entry.stats;
    const results = await Promise.all(
      [0, 1, 2, 3].map(() =>
        api(d, "POST", "/v1/completions", {
          model: "stories",
          prompt: "Once upon a time",
          max_tokens: 300,
          temperature: 0,
          ignore_eos: true,
        }),
      ),
    );
    for (const r of results) {
      assert.equal(r.status, 200);
      assert.equal(r.json.usage.completion_tokens, 300);
      // Decoding in a batch of 4 is not bitwise the same as alone (other matrix shapes, other summation order), and
      // stories260K has near-ties (llama-node in a batch once gave ", there was was a little girl named Lily"): a
      // mixed-up sequence loses the story at once, a rounding difference keeps its opening.
      const text: string = r.json.choices[0].text;
      assert.ok(text.startsWith(", there was") && text.slice(0, 60).includes("a little girl named Lily"), text);
    }
    const after = (await ps(d)).models.find((m: any) => m.name === "stories:latest").stats;
    assert.ok(after.multiSequenceBatches > before.multiSequenceBatches, JSON.stringify(after));
    assert.ok(after.maxSequencesInBatch >= 2);
  });
});
