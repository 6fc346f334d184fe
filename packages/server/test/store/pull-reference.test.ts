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
      "ftp://x/y.gguf",
      "Stories:bad tag!",
      "oci://onlyrepo",
      "a//b",
      "llama3.2@sha256:1234",
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

describe("registry references", () => {
  const oci = (input: string) => {
    const ref = parsePullReference(input);
    assert.equal(ref.kind, "oci", input);
    return (ref as Extract<typeof ref, { kind: "oci" }>).oci;
  };
  const digest = `sha256:${"ab".repeat(32)}`;
  test("bare names are Ollama's library; hosts by Docker's rule; oci:// and ollama://", () => {
    assert.deepEqual(oci("llama3.2:1b"), { repository: "library/llama3.2", tag: "1b" });
    assert.deepEqual(oci("Qwen2.5"), { repository: "library/qwen2.5", tag: "latest" });
    assert.deepEqual(oci("someone/model:q4"), { repository: "someone/model", tag: "q4" });
    assert.deepEqual(oci("registry.ollama.ai/library/llama3.2:1b"), {
      registry: "registry.ollama.ai",
      repository: "library/llama3.2",
      tag: "1b",
    });
    assert.deepEqual(oci("localhost:5000/team/sub/model:v1"), {
      registry: "localhost:5000",
      repository: "team/sub/model",
      tag: "v1",
    });
    assert.deepEqual(oci(`oci://ghcr.io/org/m@${digest}`), { registry: "ghcr.io", repository: "org/m", digest });
    assert.deepEqual(oci(`oci://ghcr.io/org/m:v2@${digest}`), {
      registry: "ghcr.io",
      repository: "org/m",
      tag: "v2",
      digest,
    });
    assert.deepEqual(oci("ollama://gemma:2b"), { repository: "library/gemma", tag: "2b" });
    // A one-part oci:// path is still a repository on that registry.
    assert.deepEqual(oci("oci://127.0.0.1:5000/model"), {
      registry: "127.0.0.1:5000",
      repository: "model",
      tag: "latest",
    });
  });
  test("default names", () => {
    const name = (input: string, def = "registry.ollama.ai") =>
      defaultNameFor(parsePullReference(input), undefined, def);
    assert.equal(name("llama3.2:1b"), "llama3.2:1b");
    assert.equal(name("registry.ollama.ai/library/llama3.2:1b"), "llama3.2:1b");
    assert.equal(name("someone/model"), "someone/model:latest");
    assert.equal(name("oci://ghcr.io/org/m:v2"), "ghcr.io/org/m:v2");
    assert.equal(name("oci://localhost:5000/a/b/c/d:v1"), "localhost-5000/b/c/d:v1");
    assert.equal(name(`oci://ghcr.io/org/m@${digest}`), "ghcr.io/org/m:sha256-abababababab");
    assert.equal(name("mirror.corp:5000/library/x:1", "mirror.corp:5000"), "x:1");
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
