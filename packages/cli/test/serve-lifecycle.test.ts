import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { loadDaemonModule, REPO_ROOT, STORIES_GGUF } from "@llmos/test-support";
import { cliEnv, runCli } from "./helpers/cli.js";

const mod = await loadDaemonModule();

interface Served {
  child: ChildProcess;
  url: string;
  home: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `llmos serve` from source on a free port with its own home; resolves once it listens. */
async function serve(env: Record<string, string> = {}, home?: string): Promise<Served> {
  home ??= fs.mkdtempSync(path.join(os.tmpdir(), "llmos-serve-"));
  const child = spawn(
    process.execPath,
    ["--conditions=llmos-source", "--import", "tsx", "packages/cli/src/main.ts", "serve", "--port", "0"],
    {
      cwd: REPO_ROOT,
      env: cliEnv({
        LLMOS_HOME: home,
        LLMOS_LOG_LEVEL: "error",
        LLMOS_THREADS: "1",
        LLMOS_IMPORT_DIRS: path.dirname(STORIES_GGUF),
        ...env,
      }),
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      const m = /llmos listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
  return { child, url, home, stderr: () => stderr, exited };
}

/** Reads an SSE stream to its end: the data payloads, parsed (`[DONE]` kept as a string). */
async function readEvents(body: ReadableStream<Uint8Array>, onFirst: () => void): Promise<unknown[]> {
  const events: unknown[] = [];
  let buffer = "";
  const decoder = new TextDecoder();
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, i).replace(/^data: /, "");
      buffer = buffer.slice(i + 2);
      events.push(line === "[DONE]" ? line : JSON.parse(line));
      if (events.length === 1) onFirst();
    }
  }
  return events;
}

describe("llmos serve: one per home, drains on SIGTERM", { skip: typeof mod === "string" ? mod : false }, () => {
  const homes: string[] = [];
  after(() => {
    for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
  });

  test("a second serve on the same home exits with a clear message and changes nothing", async () => {
    const first = await serve();
    homes.push(first.home);
    try {
      const token = fs.readFileSync(path.join(first.home, "admin.token"), "utf8");
      const marker = path.join(first.home, "models", "tmp", "in-flight.tmp");
      fs.writeFileSync(marker, "a write of the running daemon");
      const second = await runCli(
        ["serve", "--port", "0"],
        cliEnv({ LLMOS_HOME: first.home, LLMOS_LOG_LEVEL: "error" }),
      );
      assert.equal(second.code, 1, second.stderr);
      assert.match(second.stderr, /another llmos daemon \(pid \d+, http:\/\/127\.0\.0\.1:\d+/);
      assert.equal(fs.readFileSync(path.join(first.home, "admin.token"), "utf8"), token, "admin.token untouched");
      assert.ok(fs.existsSync(marker), "tmp/ of the running daemon untouched");
      assert.equal((await fetch(`${first.url}/healthz`)).status, 200);
    } finally {
      first.child.kill("SIGTERM");
      assert.equal(await first.exited, 0);
    }
    // Once it is gone, the home is free again.
    const again = await serve({}, first.home);
    again.child.kill("SIGTERM");
    assert.equal(await again.exited, 0, again.stderr());
  });

  test("SIGTERM mid-stream: new requests get 503, the stream in flight receives its whole answer, exit 0", async () => {
    const s = await serve({ LLMOS_CONTEXT_SIZE: "4096" });
    homes.push(s.home);
    let killed = false;
    try {
      const imported = await fetch(`${s.url}/api/models/import`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ path: STORIES_GGUF, name: "stories" }),
      });
      assert.equal(imported.status, 200, await imported.text());
      const res = await fetch(`${s.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "stories",
          prompt: "Once upon a time",
          max_tokens: 1500,
          temperature: 0,
          ignore_eos: true,
          stream: true,
          stream_options: { include_usage: true },
        }),
      });
      assert.equal(res.status, 200);
      let during: number | undefined;
      const events = await readEvents(res.body!, () => {
        s.child.kill("SIGTERM");
        killed = true;
        // While the stream is still running, a new request is turned away.
        setTimeout(() => {
          void fetch(`${s.url}/api/models`).then(
            (r) => (during = r.status),
            () => undefined,
          );
        }, 300);
      });
      assert.equal(during, 503, "the signal arrived while the stream was running");
      assert.equal(events.at(-1), "[DONE]");
      const usage = (events.at(-2) as { usage: { completion_tokens: number } }).usage;
      assert.equal(usage.completion_tokens, 1500, "the whole answer, not a cut one");
      assert.ok(!events.some((e) => typeof e === "object" && e !== null && "error" in e));
      assert.equal(await s.exited, 0);
    } finally {
      if (!killed || s.child.exitCode === null) s.child.kill("SIGKILL");
    }
  });

  test("while draining, new requests get 503 shutting_down; past LLMOS_DRAIN_TIMEOUT streams end with an error event", async () => {
    const s = await serve({ LLMOS_DRAIN_TIMEOUT: "1s", LLMOS_CONTEXT_SIZE: "4096" });
    homes.push(s.home);
    try {
      await fetch(`${s.url}/api/models/import`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ path: STORIES_GGUF, name: "stories" }),
      });
      const res = await fetch(`${s.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "stories", prompt: "Once", max_tokens: 4000, ignore_eos: true, stream: true }),
      });
      let refused: Response | undefined;
      const events = await readEvents(res.body!, () => {
        s.child.kill("SIGTERM");
        // Give the signal a moment to arrive, then knock.
        setTimeout(() => {
          void fetch(`${s.url}/api/tags`).then(
            (r) => (refused = r),
            () => undefined,
          );
        }, 300);
      });
      const last = events.at(-1) as { error?: { code: string } };
      assert.equal(last.error?.code, "shutting_down", `${events.length} events: ${JSON.stringify(events.slice(-2))}`);
      assert.equal(refused?.status, 503);
      // /api/tags answers in Ollama's error shape: { error, code }.
      assert.equal(((await refused!.json()) as { code: string }).code, "shutting_down");
      assert.equal(await s.exited, 0);
    } finally {
      if (s.child.exitCode === null) s.child.kill("SIGKILL");
    }
  });
});
