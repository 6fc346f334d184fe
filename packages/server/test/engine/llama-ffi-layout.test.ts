/**
 * The koffi struct definitions must match the C header of the pinned llama.cpp release byte for byte.
 * The header comes from node-llama-cpp's bundled source (`llama/gitRelease.bundle`); gcc compiles a program that
 * prints sizeof/alignof/offsetof of every member we declare, and we compare with koffi's view.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import koffi from "koffi";
import { GgmlThreadpoolParams, LAYOUT_STRUCTS } from "../../src/engine/llama-ffi/bindings.js";
import { KV_MEMORY_SIGNATURES } from "../../src/engine/llama-ffi/kv-memory-bindings.js";
import { getNativeRuntime } from "../../src/engine/llama-ffi/native-runtime.js";
import { GGML_TYPE_COUNT, QUANTIZE_LAYOUT_STRUCTS, quantizeApi } from "../../src/engine/llama-ffi/quantize-bindings.js";

const CHECKED_STRUCTS = { ...LAYOUT_STRUCTS, ...QUANTIZE_LAYOUT_STRUCTS };

const require = createRequire(import.meta.url);
const bundle = join(dirname(require.resolve("node-llama-cpp")), "..", "llama", "gitRelease.bundle");
const hasGcc = spawnSync("gcc", ["--version"]).status === 0;
const hasGit = spawnSync("git", ["--version"]).status === 0;
const skip = !hasGcc
  ? "gcc not installed"
  : !hasGit
    ? "git not installed"
    : !existsSync(bundle)
      ? "llama.cpp bundle missing"
      : false;

function run(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

describe("llama-ffi struct layout vs the pinned llama.h", { skip }, () => {
  let dir = "";
  const measured = new Map<string, number>();

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "llmos-ffi-layout-"));
    // Extract only the headers from the bundle (outside the repository).
    const repo = join(dir, "repo.git");
    run("git", ["init", "-q", "--bare", repo]);
    run("git", ["-C", repo, "fetch", "-q", bundle, "HEAD:refs/heads/pinned"]);
    const src = join(dir, "src");
    mkdirSync(src);
    const tar = spawnSync("git", ["-C", repo, "archive", "--format=tar", "pinned", "include", "ggml/include"], {
      maxBuffer: 64 << 20,
    });
    if (tar.status !== 0) throw new Error(`git archive failed: ${tar.stderr}`);
    writeFileSync(join(dir, "h.tar"), tar.stdout);
    run("tar", ["-xf", join(dir, "h.tar"), "-C", src]);

    const lines: string[] = [];
    for (const [name, type] of Object.entries(CHECKED_STRUCTS)) {
      lines.push(`printf("%s %zu %zu\\n", "${name}", sizeof(struct ${name}), _Alignof(struct ${name}));`);
      for (const member of Object.keys(type.members ?? {})) {
        lines.push(`printf("%s %zu\\n", "${name}.${member}", offsetof(struct ${name}, ${member}));`);
      }
    }
    // KV memory functions: a compile-time check that the header's function has exactly the C types recorded beside
    // its koffi declaration, then the size and class (gcc's __builtin_classify_type) of each of those types.
    const checks: string[] = [];
    for (const [name, sig] of Object.entries(KV_MEMORY_SIGNATURES)) {
      const fnType = `${sig.header.result} (*)(${sig.header.params.join(", ")})`;
      checks.push(`_Static_assert(__builtin_types_compatible_p(__typeof__(&${name}), ${fnType}), "${name}");`);
      [sig.header.result, ...sig.header.params].forEach((t, i) => {
        const info = t === "void" ? "0, 0" : `sizeof(${t}), __builtin_classify_type(*(${t} *)0)`;
        lines.push(`printf("fn.${name}.${i} %zu %d\\n", (size_t)${info.split(", ")[0]}, ${info.split(", ")[1]});`);
      });
    }
    const c = `#include <stdio.h>\n#include <stddef.h>\n#include "llama.h"\n${checks.join("\n")}\nint main(void) {\n${lines.join("\n")}\nreturn 0;\n}\n`;
    writeFileSync(join(dir, "layout.c"), c);
    run("gcc", [
      "-std=c11",
      "-I",
      join(src, "include"),
      "-I",
      join(src, "ggml", "include"),
      "-o",
      join(dir, "layout"),
      join(dir, "layout.c"),
    ]);
    for (const line of run(join(dir, "layout"), []).trim().split("\n")) {
      const [key, a, b] = line.split(" ");
      measured.set(key!, Number(a));
      if (b !== undefined) measured.set(`${key}${key!.startsWith("fn.") ? "#kind" : "#align"}`, Number(b));
    }
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const [name, type] of Object.entries(CHECKED_STRUCTS)) {
    test(`struct ${name}: size, alignment and every member offset`, () => {
      assert.equal(type.size, measured.get(name), `sizeof(struct ${name})`);
      assert.equal(type.alignment, measured.get(`${name}#align`), `_Alignof(struct ${name})`);
      for (const [member, info] of Object.entries(type.members ?? {})) {
        assert.equal(info.offset, measured.get(`${name}.${member}`), `offsetof(${name}, ${member})`);
      }
    });
  }

  test("KV memory functions: the header's signatures, and koffi's declarations match them", () => {
    // gcc's type classes: 1 integer (bool too, in C), 3 enum, 5 pointer, 8 real; 0: void (by us). With the sizes,
    // that tells an int32 from a bool, a pointer or a float.
    const KIND: Record<number, string> = { 0: "void", 1: "int", 3: "int", 5: "pointer", 8: "float" };
    const koffiKind = (primitive: string) =>
      primitive === "Void"
        ? "void"
        : primitive === "Pointer" || primitive === "String"
          ? "pointer"
          : primitive === "Float32" || primitive === "Float64"
            ? "float"
            : "int";
    for (const [name, sig] of Object.entries(KV_MEMORY_SIGNATURES)) {
      const proto = koffi.introspect(koffi.proto(sig.decl)) as unknown as {
        proto: {
          arguments: Array<{ type: { size: number; primitive: string } }>;
          result: { size: number; primitive: string };
        };
      };
      const ours = [proto.proto.result, ...proto.proto.arguments.map((a) => a.type)];
      assert.equal(ours.length, sig.header.params.length + 1, `${name}: parameter count`);
      ours.forEach((t, i) => {
        const key = `fn.${name}.${i}`;
        assert.ok(measured.has(key), `${key} measured`);
        assert.equal(t.size, measured.get(key), `${key}: size`);
        assert.equal(koffiKind(t.primitive), KIND[measured.get(`${key}#kind`)!], `${key}: kind`);
      });
    }
  });

  test("sizes quoted in docs/engineering.md", () => {
    assert.equal(measured.get("llama_model_params"), 80);
    assert.equal(measured.get("llama_context_params"), 160);
    assert.equal(measured.get("llama_batch"), 56);
    assert.equal(measured.get("llama_sampler_chain_params"), 1);
  });
});

describe("llama-ffi defaults read back through the bindings", () => {
  const { llama, ggml } = getNativeRuntime({}).bindings;

  test("llama_context_default_params", () => {
    const cp = llama.llama_context_default_params();
    assert.equal(cp.n_ctx, 512);
    assert.equal(cp.n_batch, 2048);
    assert.equal(cp.n_ubatch, 512);
    assert.equal(cp.n_seq_max, 1);
    assert.equal(cp.pooling_type, -1); // LLAMA_POOLING_TYPE_UNSPECIFIED
    assert.equal(cp.flash_attn_type, -1); // LLAMA_FLASH_ATTN_TYPE_AUTO
    assert.equal(cp.embeddings, false);
    assert.equal(cp.kv_unified, false);
    assert.equal(cp["type_k"], 1); // GGML_TYPE_F16
    assert.equal(cp["type_v"], 1);
    assert.equal(cp["samplers"], null);
    assert.equal(cp["n_samplers"], 0);
    assert.equal(cp["ctx_other"], null);
    assert.ok(cp.n_threads >= 1);
  });

  test("llama_model_default_params", () => {
    const mp = llama.llama_model_default_params();
    assert.equal(mp["devices"], null);
    assert.equal(mp.n_gpu_layers, -1); // all layers on the GPU when there is one
    assert.equal(mp["split_mode"], 1); // LLAMA_SPLIT_MODE_LAYER
    assert.equal(mp["load_mode"], -1); // LLAMA_LOAD_MODE_AUTO
    assert.equal(mp.vocab_only, false);
    assert.equal(mp.use_extra_bufts, true);
    assert.equal(mp["load_mtp"], false);
  });

  test("llama_model_quantize_default_params (src/llama-quant.cpp of the pinned release)", () => {
    const rt = getNativeRuntime({});
    const q = quantizeApi(rt.bindings, rt.files).llama_model_quantize_default_params();
    assert.deepEqual(
      { ...q, max_buf_size: Number(q.max_buf_size) },
      {
        nthread: 0,
        ftype: 7, // LLAMA_FTYPE_MOSTLY_Q8_0
        output_tensor_type: GGML_TYPE_COUNT,
        token_embedding_type: GGML_TYPE_COUNT,
        allow_requantize: false,
        quantize_output_tensor: true,
        only_copy: false,
        pure: false,
        keep_split: false,
        dry_run: false,
        imatrix: null,
        kv_overrides: null,
        tt_overrides: null,
        prune_layers: null,
        max_buf_size: 8 * 1024 ** 3, // LLAMA_QUANT_MAX_BUF_SIZE
      },
    );
  });

  test("llama_sampler_chain_default_params and ggml_threadpool_params_init", () => {
    assert.deepEqual(llama.llama_sampler_chain_default_params(), { no_perf: true });
    const buf = Buffer.alloc(GgmlThreadpoolParams.size);
    ggml.ggml_threadpool_params_init(buf, 3);
    const offset = (m: string): number => GgmlThreadpoolParams.members![m]!.offset;
    assert.equal(buf.readInt32LE(offset("n_threads")), 3);
    assert.equal(buf.readInt32LE(offset("prio")), 0); // GGML_SCHED_PRIO_NORMAL
    assert.equal(buf.readUInt32LE(offset("poll")), 50);
    assert.equal(buf[offset("paused")], 0);
  });
});
