import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { LlmosError } from "../../src/errors.js";
import { defaultNameFor, parsePullReference, quantOfFile } from "../../src/store/pull/reference.js";
import { pickGgufFile, type HubTreeEntry } from "../../src/store/pull/hub.js";

const file = (path: string, size = 100): HubTreeEntry => ({
  type: "file",
  path,
  size,
  lfs: { oid: "a".repeat(64), size },
});

describe("parsePullReference", () => {
  test("Hub forms", () => {
    assert.deepEqual(parsePullReference("hf.co/Owner/Repo-GGUF"), { kind: "hub", repo: "Owner/Repo-GGUF" });
    assert.deepEqual(parsePullReference("hf.co/o/r:Q4_K_M"), { kind: "hub", repo: "o/r", quant: "Q4_K_M" });
    assert.deepEqual(parsePullReference("hf://o/r:q8_0"), { kind: "hub", repo: "o/r", quant: "q8_0" });
    assert.deepEqual(parsePullReference("huggingface.co/o/r/sub/x.gguf"), {
      kind: "hub",
      repo: "o/r",
      file: "sub/x.gguf",
    });
    assert.deepEqual(parsePullReference("https://huggingface.co/o/r"), { kind: "hub", repo: "o/r" });
  });
  test("URLs", () => {
    assert.deepEqual(parsePullReference("https://example.com/m/x.gguf"), {
      kind: "url",
      url: "https://example.com/m/x.gguf",
    });
    assert.deepEqual(parsePullReference("https://huggingface.co/o/r/resolve/main/x.gguf"), {
      kind: "url",
      url: "https://huggingface.co/o/r/resolve/main/x.gguf",
    });
  });
  test("rejects nonsense with invalid_reference", () => {
    for (const bad of [
      "",
      "hf.co/onlyowner",
      "hf.co/o/r/../x.gguf",
      "stories",
      "ftp://x/y.gguf",
      "hf.co/o/r/x.gguf:Q4_0",
      "hf.co/o/r:bad tag",
    ]) {
      assert.throws(
        () => parsePullReference(bad),
        (e: unknown) => e instanceof LlmosError && e.code === "invalid_reference",
        bad,
      );
    }
  });
  test("default names are valid lower-case store names", () => {
    assert.equal(
      defaultNameFor({ kind: "hub", repo: "TheBloke/Llama-2-7B-GGUF", quant: "Q4_K_M" }),
      "hf.co/thebloke/llama-2-7b-gguf:Q4_K_M",
    );
    assert.equal(defaultNameFor({ kind: "hub", repo: "o/r" }, "x.Q8_0.gguf"), "hf.co/o/r:Q8_0");
    assert.equal(defaultNameFor({ kind: "hub", repo: "o/r" }, "x.gguf"), "hf.co/o/r:latest");
    assert.equal(defaultNameFor({ kind: "url", url: "http://h/a/Stories260K.gguf" }), "stories260k:latest");
  });
});

describe("pickGgufFile", () => {
  const files = [
    file("model-Q8_0.gguf", 800),
    file("model-Q4_K_M.gguf", 400),
    file("model-Q4_K_S.gguf", 380),
    file("model-Q2_K.gguf", 200),
    file("mmproj-model-f16.gguf", 50),
    { type: "file", path: "README.md", size: 10 } as HubTreeEntry,
  ];
  test("by tag, case-insensitively and as a whole word", () => {
    assert.equal(pickGgufFile("o/r", files, "q8_0").path, "model-Q8_0.gguf");
    assert.equal(pickGgufFile("o/r", files, "Q4_K_S").path, "model-Q4_K_S.gguf");
    assert.equal(quantOfFile("a/b/model.Q4_K_M.gguf"), "Q4_K_M");
  });
  test("default prefers Q4_K_M, else the smallest", () => {
    assert.equal(pickGgufFile("o/r", files).path, "model-Q4_K_M.gguf");
    assert.equal(pickGgufFile("o/r", [file("a.gguf", 5), file("b.gguf", 3)]).path, "b.gguf");
  });
  test("missing and ambiguous tags list what is there", () => {
    assert.throws(
      () => pickGgufFile("o/r", files, "Q6_K"),
      (e: unknown) =>
        e instanceof LlmosError &&
        e.code === "not_found" &&
        /model-Q4_K_M\.gguf/.test(e.message) &&
        !/mmproj/.test(e.message),
    );
    assert.throws(
      () => pickGgufFile("o/r", [file("a-Q4_0.gguf"), file("b-Q4_0.gguf")], "Q4_0"),
      (e: unknown) =>
        e instanceof LlmosError && e.code === "invalid_reference" && /a-Q4_0\.gguf.*b-Q4_0\.gguf/.test(e.message),
    );
    assert.throws(
      () => pickGgufFile("o/r", [{ type: "file", path: "README.md", size: 1 }]),
      (e: unknown) => e instanceof LlmosError && e.code === "not_found" && /no GGUF files/.test(e.message),
    );
  });
});
