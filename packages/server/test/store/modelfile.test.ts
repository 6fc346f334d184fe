import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { LlmosError } from "../../src/errors.js";
import { parseModelfile } from "../../src/store/modelfile/parse.js";
import { renderModelfile } from "../../src/store/modelfile/render.js";
import { validateParameters } from "../../src/store/modelfile/parameters.js";

function isInvalid(text: RegExp) {
  return (e: unknown) => e instanceof LlmosError && e.code === "invalid_request" && text.test(e.message);
}

describe("parseModelfile", () => {
  test("reads every instruction, case-insensitively, with comments and quoted values", () => {
    const parsed = parseModelfile(`# a comment
from stories:latest
PARAMETER temperature 0.2
parameter stop "<|end|>"
PARAMETER stop ###
PARAMETER num_ctx 512
PARAMETER penalize_newline false
SYSTEM """You are
a "helpful" bot."""
TEMPLATE {{ .Prompt }}
ADAPTER ./lora.gguf
MESSAGE user Hi there
MESSAGE assistant "Hello!\\nHow can I help?"
LICENSE """MIT"""
License Apache-2.0
`);
    assert.deepEqual(parsed, {
      from: "stories:latest",
      adapters: ["./lora.gguf"],
      parameters: { temperature: 0.2, stop: ["<|end|>", "###"], num_ctx: 512, penalize_newline: false },
      system: 'You are\na "helpful" bot.',
      template: "{{ .Prompt }}",
      messages: [
        { role: "user", content: "Hi there" },
        { role: "assistant", content: "Hello!\nHow can I help?" },
      ],
      license: "MIT\n\nApache-2.0",
    });
  });

  test("errors name the line", () => {
    assert.throws(() => parseModelfile("FROM x\nFOO bar"), isInvalid(/line 2: unknown instruction "FOO"/));
    assert.throws(() => parseModelfile('FROM x\n\nSYSTEM """open\nstill open'), isInvalid(/line 3: unterminated """/));
    assert.throws(
      () => parseModelfile('FROM x\nSYSTEM """a\nb"""\nPARAMETER nope 1'),
      isInvalid(/line 4: unknown parameter "nope"/),
    );
    assert.throws(
      () => parseModelfile("FROM x\nPARAMETER top_k abc"),
      isInvalid(/line 2: parameter "top_k" must be an integer/),
    );
    assert.throws(() => parseModelfile("FROM x\nPARAMETER top_p 1.5"), isInvalid(/line 2: .*<= 1/));
    assert.throws(() => parseModelfile("FROM x\nPARAMETER temperature"), isInvalid(/line 2: PARAMETER needs a value/));
    assert.throws(() => parseModelfile("FROM x\nMESSAGE robot hi"), isInvalid(/line 2: MESSAGE role must be one of/));
    assert.throws(() => parseModelfile("FROM\n"), isInvalid(/line 1: FROM needs/));
    assert.throws(() => parseModelfile("FROM a\nFROM b"), isInvalid(/line 2: FROM given twice/));
    assert.throws(() => parseModelfile('SYSTEM "a" b'), isInvalid(/line 1: unexpected text/));
  });

  test("render gives back what parse read", () => {
    const definition = {
      from: "base",
      parameters: { temperature: 0.7, stop: ["</s>", 'a "quoted" stop'], seed: 42 },
      system: "multi\nline\nsystem",
      template: '{{ .System }} """ {{ .Prompt }}',
      messages: [
        { role: "user", content: "# not a comment" },
        { role: "assistant", content: " padded " },
      ],
      license: "MIT",
    };
    const text = renderModelfile(definition, { adapters: ["sha256:" + "a".repeat(64)] });
    const back = parseModelfile(text);
    assert.equal(back.from, "base");
    assert.deepEqual(back.adapters, ["sha256:" + "a".repeat(64)]);
    assert.deepEqual(back.parameters, definition.parameters);
    assert.equal(back.system, definition.system);
    assert.equal(back.template, definition.template);
    assert.deepEqual(back.messages, definition.messages);
    assert.equal(back.license, "MIT");
  });
});

describe("validateParameters", () => {
  test("coerces API values and rejects bad ones", () => {
    assert.deepEqual(validateParameters({ temperature: "0.5", stop: ["a", "b"], num_predict: -1, use_mmap: true }), {
      temperature: 0.5,
      stop: ["a", "b"],
      num_predict: -1,
      use_mmap: true,
    });
    assert.throws(() => validateParameters({ seed: 1.5 }), isInvalid(/"seed" must be an integer/));
    assert.throws(() => validateParameters({ temperature: [1, 2] }), isInvalid(/takes one value|must be a number/));
    assert.throws(
      () => validateParameters({ bogus: 1 }),
      isInvalid(/unknown parameter "bogus"; valid parameters: .*num_ctx/),
    );
  });
});
