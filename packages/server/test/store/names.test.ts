import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { LlmosError } from "../../src/errors.js";
import { canonicalModelName, parseModelName } from "../../src/store/names.js";

describe("parseModelName", () => {
  test("accepts names with and without tags and namespaces", () => {
    assert.deepEqual(parseModelName("stories"), { name: "stories", tag: "latest" });
    assert.deepEqual(parseModelName("stories:latest"), { name: "stories", tag: "latest" });
    assert.deepEqual(parseModelName("me/llama-2.7b_x:Q4_K_M"), { name: "me/llama-2.7b_x", tag: "Q4_K_M" });
    assert.deepEqual(parseModelName("hf.co/owner/repo:q8_0"), { name: "hf.co/owner/repo", tag: "q8_0" });
    assert.equal(canonicalModelName("stories"), canonicalModelName("stories:latest"));
    // The name part is case-insensitive (folded); the tag keeps its case.
    assert.deepEqual(parseModelName("hf.co/Owner/Repo-GGUF:Q4_K_M"), { name: "hf.co/owner/repo-gguf", tag: "Q4_K_M" });
  });

  const bad: Array<[string, RegExp]> = [
    ["", /empty/],
    ["../etc/passwd", /`\.` or `\.\.`|not allowed/],
    ["a/../b", /`\.` or `\.\.`/],
    ["/abs/path", /absolute/],
    ["a\\b", /backslash/],
    ["a\u0001b", /control/],
    ["a b", /white space/],
    ["a//b", /empty segment/],
    ["a:", /tag .*empty/],
    [":tag", /name part is empty/],
    ["a:.hidden", /tag/],
    ["a:b:c", /tag/],
    ["-lead", /not allowed/],
    ["x".repeat(101), /longer than 100/],
    ["a/b/c/d/e", /more than 4/],
    ["a.json/b", /\.json/],
    ["a:" + "t".repeat(129), /tag/],
  ];
  for (const [input, why] of bad) {
    test(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => parseModelName(input),
        (e: unknown) =>
          e instanceof LlmosError &&
          e.code === "invalid_model_name" &&
          why.test(e.message) &&
          e.message.includes("a valid model name is"),
      );
    });
  }
});
