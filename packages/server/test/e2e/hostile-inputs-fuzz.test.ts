import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { largeVocabularyGguf } from "@llmos/gguf";
import { writeGgufWith } from "../support/gguf-copy.js";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { STORIES } from "../support/paths.js";

/**
 * The worst requests llmos accepts, each at the largest size allowed, while another client polls /healthz: the
 * daemon's event loop (this process: the daemon runs in-process) must stay responsive. Under `npm run fuzz`
 * (LLMOS_FUZZ_CASES) random Go and Jinja templates are added to the fixed worst cases.
 */
const FUZZ_CASES = Number(process.env.LLMOS_FUZZ_CASES ?? 0);
const SEED = Number(process.env.LLMOS_FUZZ_SEED ?? 99);
const BLOB_CAP = 16 * 1024 * 1024;

function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A template glued from pieces of Go template syntax, valid or not. */
function randomGoTemplate(r: () => number): string {
  const pieces = [
    "{{",
    "}}",
    "{{ if .System }}",
    "{{ end }}",
    "{{ else }}",
    "{{ .Prompt }}",
    "{{- .Response -}}",
    "x",
    " ",
    "{{/* c */}}",
    "{{ range .X }}",
    "{{ if",
  ];
  let out = "";
  const n = Math.floor(r() * 400);
  for (let i = 0; i < n; i++) out += pieces[Math.floor(r() * pieces.length)];
  return out;
}

/** A Jinja template glued from loops, sets, recursion and output, valid or not. */
function randomJinjaTemplate(r: () => number): string {
  const pieces = [
    "{% for m in messages %}{{ m.content }}{% endfor %}",
    "{% for i in range(100000) %}",
    "{% endfor %}",
    "{% set ns = namespace(s='ab') %}",
    "{% for i in range(30) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{{ bos_token }}",
    "{% if add_generation_prompt %}A:{% endif %}",
    "{{ 'x' * 3 }}",
    "{%",
  ];
  let out = "";
  const n = 1 + Math.floor(r() * 6);
  for (let i = 0; i < n; i++) out += pieces[Math.floor(r() * pieces.length)];
  return out;
}

describe("one request cannot freeze the daemon", () => {
  let d: TestDaemon;
  let endless: http.Server;
  let endlessUrl = "";
  let vocabFile = "";

  before(async () => {
    d = await startTestDaemon({ limits: { blobBytes: BLOB_CAP }, pullAllowHttp: ["127.0.0.1"] });
    // A model whose chat template loops (templates come from GGUF files: untrusted).
    const loop = path.join(d.filesDir, "loop.gguf");
    await writeGgufWith(STORIES, loop, {
      "tokenizer.chat_template":
        "{% for a in range(100000) %}{% for b in range(100000) %}{{ b }}{% endfor %}{% endfor %}",
    });
    assert.equal((await api(d, "POST", "/api/models/import", { path: loop, name: "loop" })).status, 200);
    const bomb = path.join(d.filesDir, "bomb.gguf");
    await writeGgufWith(STORIES, bomb, {
      "tokenizer.chat_template":
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
    });
    assert.equal((await api(d, "POST", "/api/models/import", { path: bomb, name: "bomb" })).status, 200);
    // A header just under the 64 MiB limit, nearly all vocabulary, with the last token a repeat: the check must
    // walk all of it (and refuse the file).
    vocabFile = path.join(d.filesDir, "vocab.gguf");
    fs.writeFileSync(vocabFile, largeVocabularyGguf({ tokens: 3_600_000, duplicateOf: 7 }));
    // A server that streams bytes forever without announcing a size.
    endless = http.createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      if (req.method === "HEAD") return res.end();
      const chunk = Buffer.alloc(1024 * 1024, 7);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once("drain", pump);
      };
      pump();
    });
    await new Promise<void>((r) => endless.listen(0, "127.0.0.1", r));
    endlessUrl = `http://127.0.0.1:${(endless.address() as AddressInfo).port}/endless.gguf`;
  });
  after(async () => {
    await d?.stop();
    await new Promise<void>((r) => (endless ? endless.close(() => r()) : r()));
  });

  test("worst cases at the largest allowed sizes keep the event loop under 100 ms p99; every health poll answers", async (t) => {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    const polls = { ok: 0, failed: [] as string[] };
    let polling = true;
    const poller = (async () => {
      while (polling) {
        try {
          const r = await fetch(`${d.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
          if (r.status === 200) polls.ok++;
          else polls.failed.push(String(r.status));
          await r.arrayBuffer();
        } catch (error) {
          polls.failed.push(String(error));
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    delay.enable();
    const outcomes: Array<[string, number, string]> = [];
    const worst: Array<[string, number]> = [];
    const run = async (name: string, call: () => Promise<{ status: number; text?: unknown }>) => {
      const own = monitorEventLoopDelay({ resolution: 10 });
      own.enable();
      try {
        const res = await call();
        outcomes.push([
          name,
          res.status,
          res.status >= 500 && typeof res.text === "string" ? res.text.slice(0, 300) : "",
        ]);
      } finally {
        own.disable();
        worst.push([name, own.max / 1e6]);
      }
    };
    try {
      // Go templates: the pattern that made the old regex quadratic, and a template that multiplies the prompt.
      await run("go: 64 KiB of unclosed ifs", () =>
        api(d, "POST", "/api/generate", {
          model: "stories",
          prompt: "hi",
          stream: false,
          template: "{{ if .System }}".repeat(4096),
        }),
      );
      await run("go: 64 KiB template x 4 MiB prompt", () =>
        api(d, "POST", "/api/generate", {
          model: "stories",
          prompt: "p".repeat(4 * 1024 * 1024),
          stream: false,
          template: "{{ .Prompt }}".repeat(5041),
        }),
      );
      // Jinja templates from GGUF files: a 10^10-step loop and a string doubling bomb.
      const chat = (model: string) =>
        api(d, "POST", "/api/chat", { model, stream: false, messages: [{ role: "user", content: "hi" }] });
      await run("jinja: nested loops", () => chat("loop"));
      await run("jinja: string bomb", () => chat("bomb"));
      // Every text field at its limit.
      await run("fields at their limits", () =>
        api(d, "POST", "/v1/chat/completions", {
          model: "stories",
          max_tokens: 1,
          messages: [
            { role: "system", content: "s".repeat(1024 * 1024) },
            { role: "user", content: "u".repeat(1024 * 1024) },
          ],
          stop: Array.from({ length: 16 }, (_, i) => `${i}`.padEnd(1000, "x")),
          tools: Array.from({ length: 16 }, (_, i) => ({
            type: "function",
            function: { name: `t${i}`, description: "d".repeat(8192), parameters: { type: "object" } },
          })),
        }),
      );
      // A 60 MiB GGUF header of vocabulary.
      await run("gguf: 60 MiB vocabulary header", () =>
        api(d, "POST", "/api/models/import", { path: vocabFile, name: "vocab" }),
      );
      // An upload without content-length, past the cap.
      await run("blob upload without length", async () => {
        const digest = `sha256:${createHash("sha256").update("x").digest("hex")}`;
        const body = Readable.toWeb(
          Readable.from(
            (function* () {
              for (let i = 0; i < 40; i++) yield Buffer.alloc(1024 * 1024, i);
            })(),
          ),
        ) as ReadableStream;
        const r = await fetch(`${d.url}/api/blobs/${digest}`, { method: "POST", body, duplex: "half" } as RequestInit);
        await r.arrayBuffer();
        return { status: r.status };
      });
      // A download that never announces a size.
      await run("pull of an endless unsized body", () =>
        api(d, "POST", "/api/models/pull", { reference: endlessUrl, stream: false }),
      );

      const r = prng(SEED);
      for (let i = 0; i < Math.max(5, FUZZ_CASES); i++) {
        const template = randomGoTemplate(r);
        await run(`go fuzz ${i}`, () =>
          api(d, "POST", "/api/generate", {
            model: "stories",
            prompt: "hi",
            stream: false,
            template,
            options: { num_predict: 1 },
          }),
        );
      }
      for (let i = 0; i < Math.floor(FUZZ_CASES / 20); i++) {
        const file = path.join(d.filesDir, `fuzz-${i}.gguf`);
        await writeGgufWith(STORIES, file, { "tokenizer.chat_template": randomJinjaTemplate(r) });
        await api(d, "POST", "/api/models/import", { path: file, name: `fuzz-${i}` });
        await run(`jinja fuzz ${i}`, () => chat(`fuzz-${i}`));
      }
    } finally {
      delay.disable();
      polling = false;
      await poller;
    }

    const expected: Record<string, number> = {
      "go: 64 KiB of unclosed ifs": 400,
      "go: 64 KiB template x 4 MiB prompt": 400,
      "jinja: nested loops": 400,
      "jinja: string bomb": 400,
      "gguf: 60 MiB vocabulary header": 400,
      "blob upload without length": 413,
      "pull of an endless unsized body": 413,
    };
    for (const [name, status, body] of outcomes) {
      if (name in expected) assert.equal(status, expected[name], `${name} ${body}`);
      else assert.ok(status < 500, `${name}: ${status} ${body}`);
    }
    assert.deepEqual(polls.failed, []);
    assert.ok(polls.ok >= 10, `only ${polls.ok} health polls`);
    const p99 = delay.percentile(99) / 1e6;
    worst.sort((a, b) => b[1] - a[1]);
    t.diagnostic(
      `largest delays: ${worst
        .slice(0, 4)
        .map(([n, ms]) => `${n} ${ms.toFixed(0)} ms`)
        .join(", ")}`,
    );
    t.diagnostic(
      `event-loop delay p50 ${(delay.percentile(50) / 1e6).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms; ${polls.ok} health polls; ${outcomes.length} requests`,
    );
    assert.ok(p99 < 100, `event-loop delay p99 ${p99.toFixed(1)} ms (max ${(delay.max / 1e6).toFixed(1)} ms)`);
    // The capped writes left nothing behind.
    for (const dir of ["tmp", "partial"]) assert.deepEqual(fs.readdirSync(path.join(d.home, "models", dir)), [], dir);
    assert.equal((await api(d, "GET", "/healthz")).status, 200);
  });
});
