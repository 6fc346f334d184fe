import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

const DAY = 86_400_000;

async function expiresAt(d: TestDaemon, model: string): Promise<number | undefined> {
  const m = (await api(d, "GET", "/api/ps")).json.models.find((x: any) => x.name === model);
  return m ? Date.parse(m.expiresAt) : undefined;
}

/** Long keep-alives with a real runner and the real clock (Node's timers overflow past 2^31-1 ms). */
describe("long keep-alives", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon({ parallel: 1 });
  });
  after(async () => d?.stop());

  test("keep_alive '25d' and '720h' keep the model loaded (a timer would have fired after 1 ms)", async () => {
    for (const [keepAlive, days] of [
      ["25d", 25],
      ["720h", 30],
    ] as const) {
      const r = await api(d, "POST", "/api/generate", {
        model: "stories",
        prompt: "Once upon a time",
        raw: true,
        stream: false,
        keep_alive: keepAlive,
        options: { num_predict: 2 },
      });
      assert.equal(r.status, 200, r.text);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const at = await expiresAt(d, "stories:latest");
      assert.ok(at !== undefined, `the model was unloaded right after a keep_alive of ${keepAlive}`);
      assert.ok(Math.abs(at - (Date.now() + days * DAY)) < 60_000, `expires ${new Date(at).toISOString()}`);
    }
  });

  test("an absurd keep_alive is capped at 365 days and /api/ps still answers", async () => {
    const r = await api(d, "POST", "/v1/completions", {
      model: "stories",
      prompt: "Once",
      max_tokens: 2,
      keep_alive: 1e300,
    });
    assert.equal(r.status, 200, r.text);
    const at = await expiresAt(d, "stories:latest");
    assert.ok(at !== undefined && Math.abs(at - (Date.now() + 365 * DAY)) < 60_000, String(at));
  });
});
