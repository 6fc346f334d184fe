import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  GgufError,
  locateGgufFields,
  metadataForDisplay,
  parseGgufBuffer,
  readGguf,
  summarizeGguf,
  type GgufErrorCode,
  type GgufField,
  type GgufFile,
} from "../src/index.js";
import { STORIES, TINY, modelBytes } from "./models.js";
import { assertInvariants } from "./invariants.js";

function expectCode(fn: () => unknown, code: GgufErrorCode, message?: RegExp): GgufError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof GgufError, `expected GgufError, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected GgufError ${code}, but the file was accepted`);
}

function parse(buf: Buffer): GgufFile {
  return parseGgufBuffer(buf, buf.length);
}

/** A copy of `buf` with one field overwritten. */
function withField(buf: Buffer, f: GgufField, v: bigint): Buffer {
  const b = Buffer.from(buf);
  if (f.width === 4) b.writeUInt32LE(Number(v), f.pos);
  else b.writeBigUInt64LE(v, f.pos);
  return b;
}

function field(buf: Buffer, kind: GgufField["kind"], owner?: string, nth = 0): GgufField {
  const all = locateGgufFields(buf).filter((f) => f.kind === kind && (owner === undefined || f.owner === owner));
  const f = all[nth];
  assert.ok(f, `no field ${kind} ${owner ?? ""} #${nth}`);
  return f;
}

describe("readGguf on the real models", () => {
  test("stories260K parses and summarizes", async () => {
    const g = await readGguf(STORIES);
    assertInvariants(g);
    assert.equal(g.version, 3);
    assert.equal(g.tensors.length, 48);
    assert.equal(g.alignment, 32);
    assert.equal(g.fileSize, 1185376);
    const embd = g.tensors.find((t) => t.name === "token_embd.weight");
    assert.deepEqual(embd?.dims, [64, 512]);
    assert.equal(embd?.typeName, "F32");
    assert.equal(embd?.size, 64 * 512 * 4);
    // The last tensor ends exactly at the end of the file.
    const last = [...g.tensors].sort((a, b) => b.offset - a.offset)[0]!;
    assert.equal(last.offset + last.size, g.fileSize);

    const s = summarizeGguf(g);
    assert.equal(s.architecture, "llama");
    assert.equal(s.blockCount, 5);
    assert.equal(s.embeddingLength, 64);
    assert.equal(s.headCount, 8);
    assert.equal(s.headCountKv, 4);
    assert.equal(s.contextLength, 2048);
    assert.equal(s.feedForwardLength, 172);
    assert.equal(s.vocabSize, 512);
    assert.equal(s.bosTokenId, 1);
    assert.equal(s.eosTokenId, 2);
    assert.equal(s.chatTemplate, undefined);
    assert.equal(s.fileType, null);
    assert.equal(s.quantization, "F32"); // no general.file_type: the type holding most bytes
    assert.equal(
      s.parameterCount,
      g.tensors.reduce((a, t) => a + t.elements, 0),
    );
    assert.equal(s.tensorBytes, s.parameterCount * 4);
    assert.equal(s.parameterSize, "293K");
    // 2 (K,V) * 5 blocks * 4 kv heads * (64/8) head dim * 2 bytes
    assert.equal(s.kvCacheBytesPerToken, 2 * 5 * 4 * 8 * 2);
  });

  test("llama-2-tiny-random parses and summarizes", async () => {
    const g = await readGguf(TINY);
    assertInvariants(g);
    assert.equal(g.tensors.length, 12);
    const s = summarizeGguf(g);
    assert.equal(s.architecture, "llama");
    assert.equal(s.name, "LLaMA v2");
    assert.equal(s.vocabSize, 32000);
    assert.equal(s.blockCount, 1);
    assert.equal(s.embeddingLength, 8);
    assert.equal(s.contextLength, 4096);
    assert.equal(s.fileType, 1);
    assert.equal(s.quantization, "F16");
    const tokens = g.metadata["tokenizer.ggml.tokens"];
    assert.ok(Array.isArray(tokens) && tokens[1] === "<s>" && tokens[2] === "</s>");
    const shown = metadataForDisplay(g);
    assert.equal(shown["tokenizer.ggml.tokens"], "[32000 items]");
    assert.equal(shown["general.file_type"], 1);
    assert.doesNotThrow(() => JSON.stringify(shown));
  });

  test("readGguf and parseGgufBuffer agree", async () => {
    for (const p of [STORIES, TINY]) {
      const buf = modelBytes(p);
      assert.deepEqual(await readGguf(p), parse(buf));
    }
  });

  test("readGguf reads only the header: an 8 GiB sparse file is cheap", async () => {
    const dir = mkdtempSync(join(tmpdir(), "llmos-gguf-"));
    try {
      const path = join(dir, "big.gguf");
      writeFileSync(path, modelBytes(STORIES));
      truncateSync(path, 8 * 1024 ** 3);
      const before = process.memoryUsage().rss;
      const g = await readGguf(path);
      assert.equal(g.fileSize, 8 * 1024 ** 3);
      assert.equal(g.tensors.length, 48);
      assert.ok(process.memoryUsage().rss - before < 512 * 1024 ** 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a missing file is an io error", async () => {
    await assert.rejects(readGguf("/nonexistent/x.gguf"), (e) => e instanceof GgufError && e.code === "io");
  });
});

describe("hostile files are rejected with the right code", () => {
  const stories = modelBytes(STORIES);
  const tiny = modelBytes(TINY);
  const sg = parse(stories);

  test("truncated anywhere in the header, including a 24-byte file", () => {
    const cuts = [0, 1, 3, 4, 7, 8, 15, 16, 23, 24, 25, 100, 1000, 5000, sg.headerBytes - 1];
    for (let i = 0; i < 40; i++) cuts.push(Math.floor((sg.headerBytes * i) / 40));
    for (const n of cuts) expectCode(() => parse(stories.subarray(0, n)), "truncated");
    expectCode(() => parse(stories.subarray(0, 24)), "truncated", /file ends at byte 24/);
    expectCode(() => parse(tiny.subarray(0, 300000)), "truncated");
  });

  test("truncated in the data section: a tensor extends past the end", () => {
    for (const n of [sg.headerBytes, sg.dataOffset, sg.dataOffset + 1, 600000, stories.length - 1]) {
      expectCode(
        () => parse(stories.subarray(0, n)),
        "out_of_range",
        new RegExp(`tensor "[^"]+" data \\[\\d+, \\d+\\) extends past end of file \\(${n} bytes\\)`),
      );
    }
  });

  test("a buffer shorter than the header of a longer file", () => {
    expectCode(() => parseGgufBuffer(stories.subarray(0, 5000), stories.length), "truncated", /buffer holds only 5000/);
  });

  test("wrong magic", () => {
    const b = Buffer.from(stories);
    b.write("GGML", 0, "latin1");
    expectCode(() => parse(b), "bad_magic", /"GGML"/);
  });

  test("version 99 and version 1", () => {
    const f = field(stories, "version");
    expectCode(() => parse(withField(stories, f, 99n)), "unsupported_version", /99/);
    expectCode(() => parse(withField(stories, f, 1n)), "unsupported_version");
  });

  test("tensor count 2^62 and metadata count 2^62", () => {
    expectCode(
      () => parse(withField(stories, field(stories, "tensor_count"), 2n ** 62n)),
      "limit_exceeded",
      /tensor count is 4611686018427387904, above maxTensors \(65536\)/,
    );
    expectCode(
      () => parse(withField(stories, field(stories, "kv_count"), 2n ** 62n)),
      "limit_exceeded",
      /maxMetadataEntries/,
    );
    // Within limits but impossible for the file size.
    expectCode(() => parse(withField(stories, field(stories, "tensor_count"), 60000n)), "truncated");
  });

  test("string length 2^40", () => {
    expectCode(
      () => parse(withField(stories, field(stories, "key_length"), 2n ** 40n)),
      "limit_exceeded",
      /1099511627776, above maxStringLength/,
    );
    expectCode(
      () => parse(withField(stories, field(stories, "string_length", "general.architecture"), 2n ** 40n)),
      "limit_exceeded",
    );
    expectCode(() => parse(withField(stories, field(stories, "name_length"), 2n ** 40n)), "limit_exceeded");
    // Within the limit but past the end of the file.
    expectCode(
      () => parse(withField(stories, field(stories, "string_length", "general.architecture"), 10_000_000n)),
      "truncated",
    );
  });

  test("array length huge", () => {
    const f = field(tiny, "array_length", "tokenizer.ggml.tokens");
    expectCode(
      () => parse(withField(tiny, f, 2n ** 62n)),
      "limit_exceeded",
      /"tokenizer.ggml.tokens" is 4611686018427387904, above maxArrayLength/,
    );
    expectCode(() => parse(withField(tiny, f, 16_000_000n)), "truncated");
    const scores = field(tiny, "array_length", "tokenizer.ggml.scores");
    expectCode(() => parse(withField(tiny, scores, 16_000_000n)), "truncated");
  });

  test("unknown metadata value type and array element type", () => {
    expectCode(
      () => parse(withField(stories, field(stories, "value_type", "general.architecture"), 13n)),
      "bad_type",
      /"general.architecture" has unknown value type 13/,
    );
    expectCode(
      () => parse(withField(stories, field(stories, "array_type", "tokenizer.ggml.scores"), 0xffffffffn)),
      "bad_type",
    );
  });

  test("nested arrays beyond maxArrayNesting", () => {
    // tokenizer.ggml.scores becomes an array of arrays: its f32 payload is then read as inner arrays.
    const b = withField(stories, field(stories, "array_type", "tokenizer.ggml.scores"), 9n);
    expectCode(() => parseGgufBuffer(b, b.length, { maxArrayNesting: 1 }), "limit_exceeded", /maxArrayNesting \(1\)/);
  });

  test("unknown and removed tensor types", () => {
    for (const t of [4n, 5n, 31n, 36n, 43n, 99n, 0xffffffffn]) {
      expectCode(
        () => parse(withField(stories, field(stories, "ggml_type", "blk.0.attn_q.weight"), t)),
        "bad_type",
        /"blk.0.attn_q.weight" has unknown ggml type/,
      );
    }
  });

  test("row not a multiple of the block size", () => {
    // Q8_0 needs rows of 32: stories' rows of 64 fit, the 172-wide ffn_down does not.
    const ok = withField(stories, field(stories, "ggml_type", "token_embd.weight"), 8n);
    assert.equal(parse(ok).tensors[0]!.typeName, "Q8_0");
    expectCode(
      () => parse(withField(stories, field(stories, "ggml_type", "blk.0.ffn_down.weight"), 8n)),
      "bad_tensor",
      /172 elements, not a multiple of the block size 32/,
    );
  });

  test("bad shapes: n_dims 0 and 5, dim 0, element count overflow", () => {
    expectCode(() => parse(withField(stories, field(stories, "n_dims"), 0n)), "bad_tensor");
    expectCode(() => parse(withField(stories, field(stories, "n_dims"), 5n)), "bad_tensor", /5 dimensions/);
    expectCode(() => parse(withField(stories, field(stories, "dim"), 0n)), "bad_tensor", /equal to 0/);
    expectCode(() => parse(withField(stories, field(stories, "dim"), 2n ** 62n)), "bad_tensor", /overflows/);
    expectCode(() => parse(withField(stories, field(stories, "dim"), 2n ** 64n - 1n)), "bad_tensor");
  });

  test("tensor names: too long for llama.cpp, empty", () => {
    expectCode(
      () => parse(withField(stories, field(stories, "name_length"), 70n)),
      "bad_tensor",
      /is 70 bytes; llama.cpp allows at most 63/,
    );
    expectCode(() => parse(withField(stories, field(stories, "name_length"), 0n)), "bad_tensor", /empty name/);
  });

  test("tensor offset past the end", () => {
    const f = field(stories, "offset", "blk.4.ffn_norm.weight");
    expectCode(
      () => parse(withField(stories, f, 2n ** 40n)),
      "out_of_range",
      /"blk.4.ffn_norm.weight" data \[\d+, \d+\) extends past end of file \(1185376 bytes\)/,
    );
    expectCode(() => parse(withField(stories, f, 2n ** 64n - 32n)), "out_of_range");
  });

  test("overlapping tensors", () => {
    const first = field(stories, "offset", undefined, 0);
    const second = field(stories, "offset", undefined, 1);
    const v = stories.readBigUInt64LE(first.pos);
    expectCode(() => parse(withField(stories, second, v)), "overlap", /overlaps tensor/);
    // Shifting by one alignment unit into the neighbour also overlaps.
    const w = stories.readBigUInt64LE(second.pos);
    expectCode(() => parse(withField(stories, second, w - 32n)), "overlap");
  });

  test("misaligned offset", () => {
    const f = field(stories, "offset", undefined, 3);
    const v = stories.readBigUInt64LE(f.pos);
    for (const d of [1n, 4n, 16n, 31n]) {
      expectCode(() => parse(withField(stories, f, v + d)), "bad_alignment", /is not a multiple of the alignment 32/);
    }
  });

  test("duplicate metadata key and duplicate tensor name", () => {
    const b = Buffer.from(stories);
    // "tokenizer.ggml.bos_token_id" and "tokenizer.ggml.eos_token_id" have the same length.
    const bos = field(
      stories,
      "key_length",
      undefined,
      locateGgufFields(stories)
        .filter((f) => f.kind === "key_length")
        .findIndex((f) => stories.toString("utf8", f.pos + 8, f.pos + 8 + 27) === "tokenizer.ggml.bos_token_id"),
    );
    const eosPos = stories.indexOf("tokenizer.ggml.eos_token_id");
    stories.copy(b, eosPos, bos.pos + 8, bos.pos + 8 + 27);
    expectCode(() => parse(b), "duplicate", /"tokenizer.ggml.bos_token_id" appears twice/);

    const t = Buffer.from(stories);
    const q = stories.indexOf("blk.0.attn_q.weight");
    const k = stories.indexOf("blk.0.attn_k.weight");
    t.write("q", k + "blk.0.attn_".length, "latin1");
    assert.ok(q > 0 && k > 0);
    expectCode(() => parse(t), "duplicate", /tensor name "blk.0.attn_q.weight" appears twice/);
  });

  test("invalid bool value", () => {
    // Build: turn the u32 value of general... into a bool? Use the version-independent route:
    // retype "tokenizer.ggml.bos_token_id" (u32 = 1) as bool -> valid; with value 2 it is rejected.
    const f = field(stories, "value_type", "tokenizer.ggml.eos_token_id");
    // eos = 2 as a bool byte: invalid. The 3 following bytes then misalign the rest, but the bool is read first.
    expectCode(() => parse(withField(stories, f, 7n)), "bad_type", /bool with byte value 2/);
  });

  test("custom limits", () => {
    expectCode(
      () => parseGgufBuffer(stories, stories.length, { maxTensors: 10 }),
      "limit_exceeded",
      /tensor count is 48, above maxTensors \(10\)/,
    );
    expectCode(
      () => parseGgufBuffer(stories, stories.length, { maxArrayLength: 100 }),
      "limit_exceeded",
      /"tokenizer.ggml.tokens" is 512, above maxArrayLength \(100\)/,
    );
    expectCode(
      () => parseGgufBuffer(stories, stories.length, { maxHeaderBytes: 4096 }),
      "limit_exceeded",
      /maxHeaderBytes \(4096\)/,
    );
    expectCode(
      () => parseGgufBuffer(stories, stories.length, { maxStringLength: 5 }),
      "limit_exceeded",
      /maxStringLength \(5\)/,
    );
  });

  test("readGguf rejects hostile files on disk too", async () => {
    const dir = mkdtempSync(join(tmpdir(), "llmos-gguf-"));
    try {
      const path = join(dir, "t.gguf");
      writeFileSync(path, stories.subarray(0, 24));
      await assert.rejects(readGguf(path), (e) => e instanceof GgufError && e.code === "truncated");
      writeFileSync(path, withField(stories, field(stories, "tensor_count"), 2n ** 62n));
      await assert.rejects(readGguf(path), (e) => e instanceof GgufError && e.code === "limit_exceeded");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
