import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isLlmosError, type LlmosError } from "../../src/errors.js";
import { formatResetDuration } from "../../src/http/auth/index.js";
import { estimateRequestTokens } from "../../src/http/auth/token-estimate.js";
import { RateLimiter, TokenBucket, utcDay } from "../../src/security/index.js";
import { bearer, buildSecuredApp, openSecurity, sleep, tempHome } from "./helpers.js";

const key = (over: Partial<{ rpm: number; tpm: number; tokensPerDay: number }>) => ({
  id: "k1",
  rpm: over.rpm ?? null,
  tpm: over.tpm ?? null,
  tokensPerDay: over.tokensPerDay ?? null,
});

async function rejection(p: Promise<unknown>): Promise<LlmosError> {
  try {
    await p;
  } catch (e) {
    if (isLlmosError(e)) return e;
    throw e;
  }
  assert.fail("expected a rejection");
}

describe("RateLimiter (clock injected)", () => {
  test("token bucket refills continuously and may go negative", () => {
    const b = new TokenBucket(60, 60_000, 0);
    b.take(60, 0);
    assert.equal(b.levelAt(0), 0);
    assert.equal(b.levelAt(1000), 1);
    b.take(31, 1000);
    assert.equal(b.levelAt(1000), -30);
    assert.equal(b.msUntil(10, 1000), 40_000);
    assert.equal(b.levelAt(1_000_000), 60);
  });

  test("requests per minute: the (n+1)th request in a minute is rate_limited with retryAfterSeconds", async () => {
    let now = 1_000_000;
    const rl = new RateLimiter({ timeScale: 1, now: () => now });
    const k = key({ rpm: 3 });
    for (let i = 0; i < 3; i++) await rl.admit(k, 0);
    const e = await rejection(rl.admit(k, 0));
    assert.equal(e.code, "rate_limited");
    assert.equal(e.details?.limit, "requests");
    assert.equal(e.details?.retryAfterSeconds, 20); // one request refills every 20 s at 3/min
    assert.deepEqual(rl.statusOf(k).requests, { limit: 3, remaining: 0, resetMs: 60_000 });
    now += 20_000;
    await rl.admit(k, 0);
  });

  test("tokens per minute: pre-check on the estimate, charge after the fact", async () => {
    let now = 0;
    const rl = new RateLimiter({ timeScale: 1, now: () => now });
    const k = key({ tpm: 1000 });
    await rl.admit(k, 900); // estimate fits: admitted, nothing charged yet
    assert.equal(rl.statusOf(k).tokens?.remaining, 1000);
    rl.charge(k.id, 700);
    assert.equal(rl.statusOf(k).tokens?.remaining, 300);
    const e = await rejection(rl.admit(k, 400));
    assert.equal(e.code, "rate_limited");
    assert.equal(e.details?.limit, "tokens");
    assert.equal(e.details?.retryAfterSeconds, 6); // 100 tokens missing at 1000/min
    await rl.admit(k, 300); // a smaller request still fits
    // An estimate above the whole budget is capped at it, so it can run once the bucket is full.
    rl.charge(k.id, 300);
    now += 60_000;
    await rl.admit(k, 5000);
    // Charging more than is left drives the bucket negative: the next request waits longer.
    rl.charge(k.id, 1500);
    const late = await rejection(rl.admit(k, 1));
    assert.equal(late.details?.retryAfterSeconds, 30.06); // 501 tokens missing at 1000/min
  });

  test("daily quota: quota_exceeded until the next (UTC) day", async () => {
    let now = Date.parse("2026-03-01T23:00:00Z");
    const rl = new RateLimiter({ timeScale: 1, now: () => now });
    const k = key({ tokensPerDay: 100 });
    await rl.admit(k, 60);
    rl.charge(k.id, 60);
    const e = await rejection(rl.admit(k, 50));
    assert.equal(e.code, "quota_exceeded");
    assert.equal(e.details?.retryAfterSeconds, 3600);
    await rl.admit(k, 40);
    rl.charge(k.id, 40);
    assert.equal((await rejection(rl.admit(k, 0))).code, "quota_exceeded");
    assert.equal(rl.statusOf(k).daily?.remaining, 0);
    now = Date.parse("2026-03-02T00:00:00Z");
    await rl.admit(k, 100);
    assert.equal(rl.statusOf(k).daily?.remaining, 100);
  });

  test("daily quota is seeded from stored usage (survives restarts)", async () => {
    const rl = new RateLimiter({
      timeScale: 1,
      tokensUsedOn: async (id, day) => (id === "k1" && day === utcDay(Date.now()) ? 95 : 0),
    });
    const k = key({ tokensPerDay: 100 });
    await rl.admit(k, 5);
    assert.equal((await rejection(rl.admit(k, 6))).code, "quota_exceeded");
  });

  test("estimates and header durations", () => {
    assert.equal(estimateRequestTokens({ messages: [{ role: "user", content: "12345678" }], max_tokens: 10 }), 12);
    assert.equal(estimateRequestTokens({ prompt: "abcd", options: { num_predict: 5 } }), 6);
    assert.equal(estimateRequestTokens({ input: ["abcd", "efgh"] }), 2);
    assert.equal(
      estimateRequestTokens({
        messages: [{ content: [{ type: "text", text: "abcdefgh" }] }],
        max_completion_tokens: 1,
      }),
      3,
    );
    assert.equal(estimateRequestTokens(undefined), 0);
    assert.equal(formatResetDuration(20), "20ms");
    assert.equal(formatResetDuration(1000), "1s");
    assert.equal(formatResetDuration(1500), "1.5s");
    assert.equal(formatResetDuration(360_000), "6m0s");
    assert.equal(formatResetDuration(3_723_000), "1h2m3s");
  });
});

describe("rate limits over HTTP (timeScale 0.01: a minute is 0.6 s)", () => {
  test("429 with Retry-After and x-ratelimit headers; recovers after the window", async () => {
    const { home, cleanup } = tempHome();
    const security = await openSecurity(home, { timeScale: 0.01 });
    const app = await buildSecuredApp(security);
    try {
      const { secret } = await security.keys.create({ name: "rl", scopes: ["inference"], rpm: 2, tpm: 1000 });
      const send = () =>
        app.inject({
          method: "POST",
          url: "/v1/chat/completions",
          headers: bearer(secret),
          payload: { model: "m", max_tokens: 10 },
        });
      const first = await send();
      assert.equal(first.statusCode, 200);
      assert.equal(first.headers["x-ratelimit-limit-requests"], "2");
      assert.equal(first.headers["x-ratelimit-remaining-requests"], "1");
      assert.equal(first.headers["x-ratelimit-limit-tokens"], "1000");
      assert.equal(first.headers["x-ratelimit-remaining-tokens"], "1000");
      assert.match(String(first.headers["x-ratelimit-reset-requests"]), /^\d+ms$/);
      assert.equal((await send()).statusCode, 200);
      const limited = await send();
      assert.equal(limited.statusCode, 429);
      assert.equal(limited.json().error.code, "rate_limited");
      assert.equal(limited.headers["retry-after"], "1");
      assert.ok(Number(limited.headers["retry-after-ms"]) > 0 && Number(limited.headers["retry-after-ms"]) <= 300);
      assert.equal(limited.headers["x-ratelimit-remaining-requests"], "0");
      assert.ok(limited.json().error.details.retryAfterSeconds <= 0.3);
      // Other routes are not rate limited.
      assert.equal((await app.inject({ method: "GET", url: "/healthz" })).statusCode, 200);
      await sleep(650);
      assert.equal((await send()).statusCode, 200);
    } finally {
      await app.close();
      await security.close();
      cleanup();
    }
  });

  test("token pre-check from max_tokens, charge with actual usage, daily quota", async () => {
    // A scaled day is 864 s; do not start within 10 s of its end, or the quota would reset mid-test.
    const dayMs = 864_000;
    const toNextDay = dayMs - (Date.now() % dayMs);
    if (toNextDay < 10_000) await sleep(toNextDay + 50);
    const { home, cleanup } = tempHome();
    const security = await openSecurity(home, { timeScale: 0.01 });
    const app = await buildSecuredApp(security);
    try {
      const { secret } = await security.keys.create({
        name: "tok",
        scopes: ["inference"],
        tpm: 100,
        tokensPerDay: 250,
      });
      const send = (payload: object) =>
        app.inject({
          method: "POST",
          url: "/v1/chat/completions",
          headers: bearer(secret),
          payload: { model: "m", ...payload },
        });
      // Estimate 80 fits in 100; actual usage (60 + 30) is charged afterwards.
      assert.equal((await send({ max_tokens: 80, _prompt: 60, _completion: 30 })).statusCode, 200);
      const pre = await send({ max_tokens: 50 });
      assert.equal(pre.statusCode, 429);
      assert.equal(pre.json().error.details.limit, "tokens");
      assert.ok(Number(pre.headers["x-ratelimit-remaining-tokens"]) < 50); // 10 left, refilling 1 per 6 ms
      assert.equal((await send({ max_tokens: 5, _prompt: 3, _completion: 2 })).statusCode, 200);
      await sleep(650); // the minute bucket refills
      assert.equal((await send({ max_tokens: 100, _prompt: 50, _completion: 50 })).statusCode, 200);
      await sleep(650);
      // 195 used, 55 left: an estimate of 60 does not fit the day, 50 does; actual usage may overshoot.
      assert.equal((await send({ max_tokens: 60 })).json().error?.code, "quota_exceeded");
      assert.equal((await send({ max_tokens: 50, _prompt: 30, _completion: 30 })).statusCode, 200); // 255 used
      await sleep(650);
      const quota = await send({ max_tokens: 1 });
      assert.equal(quota.statusCode, 429);
      assert.equal(quota.json().error.code, "quota_exceeded");
      assert.equal(quota.headers["x-ratelimit-remaining-tokens-day"], "0");
      // The day is 864 s at this scale: Retry-After counts down to its end.
      assert.ok(Number(quota.headers["retry-after"]) >= 1 && Number(quota.headers["retry-after"]) <= 864);
      const usage = await security.usage({ keyId: (await security.keys.list())[0]!.id });
      assert.deepEqual(
        usage.map((u) => [u.model, u.promptTokens, u.completionTokens, u.requests]),
        [["m", 143, 112, 4]],
      );
    } finally {
      await app.close();
      await security.close();
      cleanup();
    }
  });
});
