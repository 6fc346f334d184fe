/** `llmos quantize`, `llmos imatrix` and `llmos eval` as a person runs them, against a real daemon. */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadDaemonModule, startTestDaemon, STORIES_GGUF } from "@llmos/test-support";
import { cliEnv, runCli } from "./helpers/cli.js";

const mod = await loadDaemonModule();

describe("llmos quantize, imatrix and eval", { skip: typeof mod === "string" ? mod : false }, () => {
  let daemon: Awaited<ReturnType<typeof startTestDaemon>>;
  let env: NodeJS.ProcessEnv;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "llmos-cli-quant-"));

  before(async () => {
    if (typeof mod === "string") return;
    daemon = await startTestDaemon(mod);
    env = cliEnv({ LLMOS_HOST: daemon.url, LLMOS_HOME: daemon.home });
    const imp = await runCli(["import", STORIES_GGUF, "stories"], env);
    assert.equal(imp.code, 0, imp.stderr);
  });
  after(async () => {
    await daemon?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  test("quantize prints the new model; show reports its type; an unknown type lists the valid ones", async () => {
    const r = await runCli(["quantize", "stories", "stories-q8", "--type", "q8_0"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^created stories-q8:latest \([\d.]+ KB, Q8_0\)$/m);
    assert.match(r.stderr, /quantizing Q8_0/);
    const show = await runCli(["show", "stories-q8"], env);
    assert.match(show.stdout, /quantization\s+Q8_0/);
    assert.match(show.stdout, /quantized from\s+[0-9a-f]{12} by llmos \(\d+ of 48 tensors in another type\)/);
    const bad = await runCli(["quantize", "stories", "x", "--type", "Q4_K_Q"], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /valid types: .*Q4_K_M.*\[invalid_request\]/);
    const json = await runCli(["quantize", "stories", "stories-q4", "--type", "Q4_0", "--json"], env);
    const events = json.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(events.at(-1).status, "success");
    assert.ok(events.some((e) => e.total === 48 && e.completed === 48 && e.bytes > 0));
  });

  test("imatrix saves a file that quantize --imatrix takes; without it IQ2_XXS is refused", async () => {
    const refused = await runCli(["quantize", "stories", "stories-iq2", "--type", "IQ2_XXS"], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /\[imatrix_required\]/);
    const out = path.join(work, "stories.imatrix.gguf");
    const im = await runCli(["imatrix", "stories", "--ctx", "128", "--chunks", "8", "-o", out], env);
    assert.equal(im.code, 0, im.stderr);
    assert.match(im.stdout, /saved .*stories\.imatrix\.gguf \(.*35 tensors, 8 chunks\)/);
    const q = await runCli(["quantize", "stories", "stories-iq2", "--type", "IQ2_XXS", "--imatrix", out], env);
    assert.equal(q.code, 0, q.stderr);
  });

  test("eval prints perplexity, KL divergence and top-token agreement; --json gives the job", async () => {
    const r = await runCli(["eval", "stories-q8", "--base", "stories", "--chunks", "4"], env);
    assert.equal(r.code, 0, r.stderr);
    for (const row of [
      "perplexity",
      "base perplexity",
      "perplexity ratio",
      "KLD mean",
      "KLD 99th pct",
      "same top token",
    ])
      assert.match(r.stdout, new RegExp(`^  ${row}\\s+\\S`, "m"), r.stdout);
    assert.match(r.stdout, /context\s+128 tokens x 4 chunks, 252 positions scored/);
    const json = await runCli(["eval", "stories", "--chunks", "2", "--json"], env);
    assert.equal(json.code, 0, json.stderr);
    const last = JSON.parse(json.stdout.trim().split("\n").at(-1)!);
    assert.equal(last.state, "succeeded");
    assert.ok(last.result.perplexity > 1);
  });
});
