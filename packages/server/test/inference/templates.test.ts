import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { isLlmosError } from "../../src/errors.js";
import { renderGoTemplate, renderJinja, type ChatMessage } from "../../src/inference/chat-template.js";
import { JinjaSandbox } from "../../src/inference/jinja-sandbox.js";

const chat: ChatMessage[] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hi" },
  { role: "assistant", content: "Hello!" },
  { role: "user", content: "Bye" },
];
const refused = (pattern: RegExp, param?: string) => (e: unknown) =>
  isLlmosError(e) && e.code === "invalid_request" && pattern.test(e.message) && (!param || e.details?.param === param);

describe("Go templates (definition TEMPLATE, Ollama generate's template)", () => {
  test("the classic subset renders turn by turn, up to the last {{ .Response }}", () => {
    const t = "{{ if .System }}<<SYS>>{{ .System }}<</SYS>>{{ end }}[INST] {{ .Prompt }} [/INST]{{ .Response }}</s>";
    assert.equal(renderGoTemplate(t, chat), "<<SYS>>Be brief.<</SYS>>[INST] Hi [/INST]Hello!</s>[INST] Bye [/INST]");
  });

  test("else, nesting, comments and trim markers behave as in Go", () => {
    const t =
      "{{/* a comment */}}{{- if .System }}S:{{ .System }}{{ else }}no system{{ end -}}\n  |{{ if .Prompt }}{{ if .System }}both{{ end }}{{ end }}";
    assert.equal(renderGoTemplate(t, [{ role: "user", content: "q" }]), "no system|");
    assert.equal(renderGoTemplate(t, chat.slice(0, 2)), "S:Be brief.|both");
  });

  test("anything outside the subset, or unbalanced, is a 400 naming the field", () => {
    assert.throws(
      () => renderGoTemplate("{{ range .Messages }}x{{ end }}", chat),
      refused(/not supported/, "template"),
    );
    assert.throws(() => renderGoTemplate("{{ if .System }}x", chat), refused(/never closed/));
    assert.throws(() => renderGoTemplate("x{{ end }}", chat), refused(/no open/));
    assert.throws(() => renderGoTemplate("{{ .Prompt ", chat), refused(/unclosed/));
  });

  test("what made the old regex quadratic (unclosed ifs, 64 KiB of them) is refused in one pass", () => {
    const hostile = "{{ if .System }}".repeat(65536 / 16);
    assert.throws(() => renderGoTemplate(hostile, chat), refused(/nest more than 64/));
    const flat = "{{ if .System }}{{ end }}".repeat(65536 / 25) + "{{ if .System }}";
    assert.throws(() => renderGoTemplate(flat, chat), refused(/never closed/));
  });

  test("steps and output are bounded across all turns", () => {
    const many: ChatMessage[] = Array.from({ length: 200 }, (_, i) => ({ role: "user", content: `m${i}` }));
    const t = "{{ .Prompt }}".repeat(100);
    assert.throws(
      () => renderGoTemplate(t, many, "template", { maxSteps: 10_000, maxOutputChars: 1 << 20 }),
      refused(/more than 10000 steps/),
    );
    assert.throws(
      () =>
        renderGoTemplate("{{ .Prompt }}", [{ role: "user", content: "x".repeat(5000) }], "template", {
          maxSteps: 100,
          maxOutputChars: 4096,
        }),
      refused(/longer than 4096 characters/),
    );
  });
});

describe("Jinja chat templates run in a sandbox", () => {
  // A generous time limit: the step and output limits must be what stops these, even on a busy machine.
  const sandbox = new JinjaSandbox({ maxSteps: 200_000, maxOutputChars: 1 << 20, timeoutMs: 30_000, heapMb: 64 });
  after(() => sandbox.dispose());
  const ctx = { bosText: "<s>", eosText: "</s>" };
  const render = (template: string) => renderJinja(sandbox, template, chat, ctx);

  test("a real template renders (messages, bos/eos, add_generation_prompt)", async () => {
    const t =
      "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
    assert.equal(
      await render(t),
      "<s><|system|>Be brief.</s><|user|>Hi</s><|assistant|>Hello!</s><|user|>Bye</s><|assistant|>",
    );
  });

  test("loops, recursion and string bombs stop at the limits with a 400; the next render works", async () => {
    await assert.rejects(render("{% for i in range(10**9) %}x{% endfor %}"), refused(/range\(\) of 1000000000 items/));
    await assert.rejects(
      render("{% for a in range(1000) %}{% for b in range(1000) %}{{ b }}{% endfor %}{% endfor %}"),
      refused(/more than 200000 steps/),
    );
    await assert.rejects(render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"), refused(/stopped|failed/));
    await assert.rejects(
      render(
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
      ),
      refused(/string longer than 1048576/),
    );
    await assert.rejects(render("{% for %}"), refused(/does not parse/));
    assert.equal(await render("{{ messages[1].content }}"), "Hi");
  });

  test("a template that runs past the time limit is stopped and the worker replaced", async () => {
    const slow = new JinjaSandbox({ maxSteps: 1e12, timeoutMs: 300 });
    try {
      await assert.rejects(
        renderJinja(
          slow,
          "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
          chat,
          ctx,
        ),
        refused(/longer than 0.3 s/),
      );
      assert.equal(await renderJinja(slow, "{{ messages|length }}", chat, ctx), "4");
    } finally {
      await slow.dispose();
    }
  });
});
