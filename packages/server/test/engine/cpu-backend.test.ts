/**
 * A CPU backend built here is used only when its folder matches the loaded libraries; anything else (no manifest,
 * another release, another libggml-base, a stray file, a library that does not load) falls back to the shipped
 * backend, says why, and generates as before. The build itself is tested end to end in the CLI's tests.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  checkCpuBackend,
  CPU_BACKEND_MANIFEST,
  releaseOf,
  sha256File,
  type CpuBackendManifest,
} from "../../src/engine/llama-ffi/cpu-backend.js";
import { probeCpuBackend } from "../../src/engine/llama-ffi/cpu-backend-build.js";
import { findLibraryFiles } from "../../src/engine/llama-ffi/library-files.js";
import { ChildProcessRunnerFactory } from "../../src/runtime/child-process-runner-factory.js";
import { createLogger } from "../../src/telemetry/logger.js";

const repoRoot = resolve(fileURLToPath(import.meta.url), "../../../../..");
const stories = resolve(repoRoot, "../shared/models/stories260K.gguf");
const files = findLibraryFiles();

function manifest(over: Partial<CpuBackendManifest> = {}): CpuBackendManifest {
  return {
    release: releaseOf(files)!,
    variant: "zen4",
    library: "libggml-cpu-zen4.so",
    ggmlBaseSha256: sha256File(files.ggmlBase),
    compiler: "c++ (test)",
    builtAt: new Date(0).toISOString(),
    ...over,
  };
}

describe("CPU backend built here: folder checks", () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), "llmos-cpu-backend-"));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const folder = (
    name: string,
    m: CpuBackendManifest | string | null,
    libs: string[] = ["libggml-cpu-zen4.so"],
  ): string => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    if (m !== null) writeFileSync(join(dir, CPU_BACKEND_MANIFEST), typeof m === "string" ? m : JSON.stringify(m));
    for (const lib of libs) writeFileSync(join(dir, lib), "not a library");
    return dir;
  };

  test("the release is read from libllama's file name", () => {
    assert.match(releaseOf(files) ?? "", /^v\d+\.\d+\.\d+$/);
  });

  test("a matching folder passes", () => {
    const r = checkCpuBackend(folder("ok", manifest()), files);
    assert.equal(r.ok, true);
  });

  test("each mismatch is refused with its reason", () => {
    const cases: Array<[string, string, RegExp]> = [
      ["none", folder("none", null), /no llmos-cpu-backend\.json/],
      ["garbled", folder("garbled", "{not json"), /unreadable/],
      ["release", folder("release", manifest({ release: "v0.0.1" })), /built for llama\.cpp v0\.0\.1.*rebuild/],
      ["base", folder("base", manifest({ ggmlBaseSha256: "0".repeat(64) })), /another libggml-base.*rebuild/],
      ["name", folder("name", manifest({ library: "../../evil.so" })), /names no CPU backend library/],
      ["missing", folder("missing", manifest(), []), /libggml-cpu-zen4\.so is missing/],
      ["stray", folder("stray", manifest(), ["libggml-cpu-zen4.so", "libggml-cuda.so"]), /must hold only/],
    ];
    for (const [name, dir, reason] of cases) {
      const r = checkCpuBackend(dir, files);
      assert.equal(r.ok, false, name);
      if (!r.ok) assert.match(r.reason, reason, name);
    }
  });

  test("a process given a folder that does not match runs on the shipped backend and says why", async () => {
    const shipped = await probeCpuBackend(null);
    assert.equal(shipped.source, "shipped");
    assert.deepEqual(shipped.devices, ["CPU"]);
    assert.ok(shipped.library && existsSync(shipped.library), `shipped library ${shipped.library}`);
    assert.equal(shipped.fallbackReason, undefined);

    const stale = await probeCpuBackend(folder("stale", manifest({ release: "v0.0.1" })));
    assert.equal(stale.source, "shipped");
    assert.equal(stale.library, shipped.library);
    assert.match(stale.fallbackReason ?? "", /built for llama\.cpp v0\.0\.1/);
  });

  test("a matching manifest next to a file that is no library: the shipped backend, not a crash", async () => {
    const r = await probeCpuBackend(folder("garbage", manifest()));
    assert.equal(r.source, "shipped");
    assert.deepEqual(r.devices, ["CPU"]);
    assert.match(r.fallbackReason ?? "", /could not be loaded|does not run on this CPU/);
  });

  test(
    "a runner given a stale folder warns, reports the shipped backend, and generates",
    { skip: existsSync(stories) ? false : `missing ${stories}` },
    async () => {
      const lines: string[] = [];
      const sink = { write: (s: string) => void lines.push(s) };
      const runners = new ChildProcessRunnerFactory(createLogger("warn", sink as unknown as NodeJS.WritableStream));
      const runner = await runners.start(
        {
          engine: "llama-ffi",
          gpu: false,
          cpuBackendDir: folder("runner", manifest({ ggmlBaseSha256: "f".repeat(64) })),
          streamIntervalMs: 0,
          modelPath: stories,
          contextSize: 256,
          slots: 1,
          threads: 1,
          gpuLayers: 0,
        },
        "stale-backend",
      );
      try {
        assert.equal(runner.cpuBackend?.source, "shipped");
        const g = runner.generate({
          prompt: "Once upon a time",
          maxTokens: 8,
          sampling: {
            temperature: 0,
            topK: 0,
            topP: 1,
            minP: 0,
            repeatPenalty: 1,
            presencePenalty: 0,
            frequencyPenalty: 0,
            penaltyLastN: 0,
          },
          stop: [],
        });
        let text = "";
        for await (const c of g) text += c.text;
        assert.equal((await g.result).completionTokens, 8);
        assert.match(text, /^, there was/);
        assert.ok(
          lines.some((l) => /CPU backend built here not used: built against another libggml-base/.test(l)),
          lines.join(""),
        );
      } finally {
        await runner.stop();
      }
    },
  );
});
