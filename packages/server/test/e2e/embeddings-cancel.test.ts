import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { waitFor } from "../support/processes.js";

async function promptTokens(d: TestDaemon): Promise<number> {
  const text = (await api(d, "GET", "/metrics")).text;
  return Number(/^llmos_tokens_total\{model="stories:latest",kind="prompt"\} (\d+)/m.exec(text)?.[1] ?? 0);
}

/**
 * A big embeddings request whose client goes away must not keep the model's only slot for the rest of its inputs
 * (a 4 MB request was about 20 minutes of runner time, with every other request on the model waiting).
 */
describe("embeddings stop when their client goes away", () => {
  let d: TestDaemon;
  before(async () => (d = await startTestDaemon({ parallel: 1 })));
  after(async () => d?.stop());

  test("the runner stops between inputs; the next request gets the slot; only what was embedded is counted", async () => {
    const inputs = Array.from(
      { length: 2048 },
      (_, i) => `${i} ${"The dog ran to the park and played with a red ball. ".repeat(8)}`,
    );
    const whole = (await api(d, "POST", "/api/tokenize", { model: "stories", content: inputs[0] })).json.tokens.length;
    const total = whole * inputs.length;
    const before = await promptTokens(d);
    const client = new AbortController();
    const big = fetch(`${d.url}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "stories", input: inputs }),
      signal: client.signal,
    }).catch((e: Error) => e);
    // Once the runner is embedding, the client leaves.
    await waitFor(async () => {
      const m = (await api(d, "GET", "/api/ps")).json.models.find((x: any) => x.name === "stories:latest");
      return m?.slotsBusy === 1 ? true : undefined;
    });
    client.abort();
    assert.ok((await big) instanceof Error);
    // The model's only slot is free for the next request long before 2048 inputs could have been embedded.
    const next = await api(d, "POST", "/v1/completions", { model: "stories", prompt: "Once", max_tokens: 2 });
    assert.equal(next.status, 200, next.text);
    const embedded = (await promptTokens(d)) - before;
    assert.ok(embedded < total / 2, `${embedded} of ${total} tokens were embedded after the client left`);
    // What was embedded before the client left is charged to it like any prompt tokens.
    await d.security.flush();
    const usage = (await d.security.usage()).find((u) => u.model === "stories:latest");
    assert.ok(usage && usage.promptTokens >= embedded - 10 && embedded > 0, JSON.stringify(usage));
  });

  test("large requests are embedded in batches with the same result as one by one", async () => {
    const inputs = Array.from({ length: 70 }, (_, i) => `input number ${i}: the cat sat on the mat`);
    const all = await api(d, "POST", "/api/embed", { model: "stories", input: inputs });
    assert.equal(all.status, 200, all.text.slice(0, 300));
    assert.equal(all.json.embeddings.length, 70);
    const last = await api(d, "POST", "/api/embed", { model: "stories", input: inputs[69] });
    const diff = Math.max(
      ...last.json.embeddings[0].map((x: number, i: number) => Math.abs(x - all.json.embeddings[69][i])),
    );
    assert.ok(diff < 1e-5, `batched and single embeddings differ by ${diff}`);
  });
});
