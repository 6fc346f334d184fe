/**
 * The live event stream and the request list against a real daemon: snapshots that agree with /metrics and
 * /api/ps, request and model events, resuming with Last-Event-ID, what each key's scopes let it see and do,
 * cancelling requests, and the browser redirect of `/`.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { adminHeaders, api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { openEvents } from "../support/sse.js";
import { slowModel } from "../support/synth.js";

/** Sum of a metric's samples in Prometheus text (all label sets). */
function metricSum(text: string, name: string): number {
  let n = 0;
  for (const line of text.split("\n"))
    if (line.startsWith(name + "{") || line.startsWith(name + " ")) n += Number(line.split(" ").pop());
  return n;
}

const slowBody = (max: number) => ({ model: "slow", prompt: "Once upon a time", max_tokens: max, ignore_eos: true });

describe("live events without keys (loopback)", { timeout: 300_000 }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon({ parallel: 2, eventsIntervalMs: 300, contextSize: 512 });
    await d.store.importFile(await slowModel(), "slow");
  });
  after(() => d?.stop());

  it("starts with a snapshot holding chart history, then streams model and request events", async () => {
    const sse = await openEvents(`${d.url}/api/events`);
    assert.equal(sse.status, 200);
    const first = await sse.next((e) => e.type === "snapshot");
    assert.ok(Array.isArray(first.data.history), "the first snapshot carries the chart history");
    assert.equal(first.data.access.modelsRead, true);
    const res = await api(d, "POST", "/v1/completions", {
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 8,
    });
    assert.equal(res.status, 200);
    const loaded = await sse.next((e) => e.type === "model.loaded");
    assert.equal(loaded.data.model, "stories:latest");
    const finished = await sse.next((e) => e.type === "request.finished");
    assert.equal(finished.data.completionTokens, res.json.usage.completion_tokens);
    assert.equal(finished.data.promptTokens, res.json.usage.prompt_tokens);
    assert.equal(finished.data.outcome, "ok");
    assert.ok(sse.events.some((e) => e.type === "request.queued" && e.data.id === finished.data.id));
    assert.ok(sse.events.some((e) => e.type === "request.started" && e.data.id === finished.data.id));
    const after = await sse.next((e) => e.type === "snapshot" && e.data.lastUsed["stories:latest"] !== undefined);
    assert.ok(after.data.lastUsed["stories:latest"] >= finished.data.arrivedAt, "the model's last use is known");
    const ids = sse.events.map((e) => e.id!);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
      "ids never go down",
    );
    sse.close();
  });

  it("shows the same running and queued counts as /metrics and /api/ps", async () => {
    const sse = await openEvents(`${d.url}/api/events`);
    // Long generations (cancelled below once checked), so the counts hold while /metrics is read.
    const all = Promise.all([1, 2, 3].map(() => api(d, "POST", "/v1/completions", slowBody(480))));
    // Two slots and three requests: the snapshot that shows two running and one queued.
    const snap = await sse.next(
      (e) =>
        e.type === "snapshot" &&
        e.data.point.running === 2 &&
        e.data.point.queued === 1 &&
        e.data.requests.length === 3,
    );
    const [metrics, ps] = await Promise.all([api(d, "GET", "/metrics"), api(d, "GET", "/api/ps")]);
    assert.equal(metricSum(metrics.text, "llmos_requests_running"), 2, "running agrees (read while they ran)");
    assert.equal(metricSum(metrics.text, "llmos_queue_depth"), 1, "queued agrees");
    const slow = snap.data.models.find((m: { name: string }) => m.name === "slow:latest");
    const psSlow = ps.json.models.find((m: { name: string }) => m.name === "slow:latest");
    assert.equal(slow.slots, psSlow.slots);
    assert.equal(snap.data.node.budget.budgetBytes, ps.json.memory.budgetBytes);
    const states = snap.data.requests.map((r: { state: string }) => r.state).sort();
    assert.deepEqual(states, ["queued", "running", "running"]);
    // Completion tokens per second in a later snapshot come from llmos_tokens_total.
    const busy = await sse.next((e) => e.type === "snapshot" && e.data.point.tokensPerSecond > 0);
    assert.ok(busy.data.point.tokensPerSecond > 0);
    for (const r of (await api(d, "GET", "/api/requests")).json.requests)
      await api(d, "DELETE", `/api/requests/${r.id}`, undefined, adminHeaders(d));
    await all;
    sse.close();
  });

  it("resumes with Last-Event-ID: the events missed are sent first, no history", async () => {
    const sse = await openEvents(`${d.url}/api/events`);
    const snap = await sse.next((e) => e.type === "snapshot");
    sse.close();
    await api(d, "POST", "/api/models/stories/unload");
    const resumed = await openEvents(`${d.url}/api/events`, { "last-event-id": String(snap.id) });
    const unloaded = await resumed.next((e) => e.type === "model.unloaded" && e.data.model === "stories:latest");
    const next = await resumed.next((e) => e.type === "snapshot");
    assert.ok(
      resumed.events.indexOf(unloaded) < resumed.events.indexOf(next),
      "missed events come before the snapshot",
    );
    assert.equal(next.data.history, undefined);
    resumed.close();
  });

  it("lists requests and cancels a queued and a running one", async () => {
    // The two long requests take both slots first, so the short one is the one left waiting in the queue.
    const running = [1, 2].map(() => api(d, "POST", "/v1/completions", slowBody(400)));
    let list: Array<{ id: string; state: string }> = [];
    const waitFor = async (done: () => boolean) => {
      for (let i = 0; i < 600 && !done(); i++) {
        list = (await api(d, "GET", "/api/requests")).json.requests;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await waitFor(() => list.filter((r) => r.state === "running").length === 2);
    const queued = api(d, "POST", "/v1/completions", slowBody(8));
    await waitFor(() => list.length === 3 && list.some((r) => r.state === "queued"));
    const q = list.find((r) => r.state === "queued")!;
    const r = list.find((r) => r.state === "running")!;
    // Cancelling is an admin route: the admin token, even from loopback without keys.
    assert.equal((await api(d, "DELETE", `/api/requests/${q.id}`)).status, 401);
    assert.equal((await api(d, "DELETE", `/api/requests/${q.id}`, undefined, adminHeaders(d))).status, 200);
    assert.equal((await api(d, "DELETE", `/api/requests/${r.id}`, undefined, adminHeaders(d))).status, 200);
    const q2 = await queued;
    assert.ok(q2.status >= 400, "the cancelled queued request fails");
    const [a, b] = await Promise.all(running);
    const tokens = [a!.json.usage.completion_tokens, b!.json.usage.completion_tokens].sort((x, y) => x - y);
    assert.ok(tokens[0]! < 400, `one running request stopped early (${tokens.join(", ")} tokens)`);
    assert.equal((await api(d, "DELETE", `/api/requests/${q.id}`, undefined, adminHeaders(d))).status, 404);
  });

  it("sends browsers from / to the dashboard; API clients keep Ollama's answer", async () => {
    const html = await fetch(`${d.url}/`, {
      headers: { accept: "text/html,application/xhtml+xml" },
      redirect: "manual",
    });
    assert.equal(html.status, 302);
    assert.equal(html.headers.get("location"), "/ui/");
    const plain = await api(d, "GET", "/");
    assert.equal(plain.text, "Ollama is running");
    const page = await api(d, "GET", "/ui/");
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'none'.*script-src 'self'/);
    assert.doesNotMatch(page.text, /<script>(?!<\/script>)|<script(?![^>]*\bsrc=)[^>]*>/, "no inline script");
  });
});

describe("live events with keys", { timeout: 300_000 }, () => {
  let d: TestDaemon;
  let admin: string;
  let viewer: { id: string; secret: string };
  let worker: { id: string; secret: string };
  before(async () => {
    d = await startTestDaemon({ eventsIntervalMs: 300 });
    admin = (await d.security.keys.create({ name: "admin", scopes: ["admin"] })).secret;
    const v = await d.security.keys.create({ name: "viewer", scopes: ["metrics"] });
    viewer = { id: v.key.id, secret: v.secret };
    const w = await d.security.keys.create({ name: "worker", scopes: ["inference", "metrics"] });
    worker = { id: w.key.id, secret: w.secret };
  });
  after(() => d?.stop());
  const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

  it("refuses a key without the metrics scope and a request without a key", async () => {
    const inferenceOnly = (await d.security.keys.create({ name: "inf", scopes: ["inference"] })).secret;
    assert.equal((await openEvents(`${d.url}/api/events`, bearer(inferenceOnly))).status, 403);
    assert.equal((await openEvents(`${d.url}/api/events`)).status, 401);
  });

  it("shows a metrics key no models, no log lines and only its own requests; admins see everything", async () => {
    const asViewer = await openEvents(`${d.url}/api/events`, bearer(viewer.secret));
    const asWorker = await openEvents(`${d.url}/api/events`, bearer(worker.secret));
    const asAdmin = await openEvents(`${d.url}/api/events`, bearer(admin));
    const body = { model: "stories", prompt: "Once upon a time", max_tokens: 4 };
    assert.equal((await api(d, "POST", "/v1/completions", body, bearer(worker.secret))).status, 200);
    await asAdmin.next((e) => e.type === "request.finished" && e.data.keyId === worker.id);
    await asAdmin.next((e) => e.type === "log");
    await asWorker.next((e) => e.type === "request.finished" && e.data.keyName === "worker");
    const viewerSnap = await asViewer.next((e) => e.type === "snapshot" && e.id! >= asAdmin.events.at(-1)!.id!);
    assert.deepEqual(viewerSnap.data.models, [], "no models:read, no models");
    assert.deepEqual(viewerSnap.data.lastUsed, {});
    assert.deepEqual(viewerSnap.data.access, {
      admin: false,
      modelsWrite: false,
      modelsRead: false,
      inference: false,
      metrics: true,
    });
    assert.ok(
      !asViewer.events.some((e) => e.type === "log" || e.type.startsWith("request.") || e.type.startsWith("model.")),
    );
    assert.ok(!asWorker.events.some((e) => e.type === "log"));
    const adminSnap = await asAdmin.next((e) => e.type === "snapshot" && e.data.models.length > 0);
    assert.equal(adminSnap.data.access.admin, true);
    for (const s of [asViewer, asWorker, asAdmin]) s.close();
  });

  it("shows a key with an allow-list only its models: snapshots, last use and model events", async () => {
    await d.store.copy("stories", "other");
    const tenant = (
      await d.security.keys.create({
        name: "tenant",
        scopes: ["metrics", "models:read", "inference"],
        models: ["stories"],
      })
    ).secret;
    const asTenant = await openEvents(`${d.url}/api/events`, bearer(tenant));
    const asAdmin = await openEvents(`${d.url}/api/events`, bearer(admin));
    const body = (model: string) => ({ model, prompt: "Once upon a time", max_tokens: 2 });
    assert.equal((await api(d, "POST", "/v1/completions", body("other"), bearer(admin))).status, 200);
    assert.equal((await api(d, "POST", "/v1/completions", body("stories"), bearer(tenant))).status, 200);
    await asAdmin.next((e) => e.type === "model.loaded" && e.data.model === "other:latest");
    const adminSnap = await asAdmin.next(
      (e) => e.type === "snapshot" && e.data.models.length === 2 && Object.keys(e.data.lastUsed).length === 2,
    );
    const snap = await asTenant.next((e) => e.type === "snapshot" && e.id! >= adminSnap.id!);
    assert.deepEqual(
      snap.data.models.map((m: any) => m.name),
      ["stories:latest"],
    );
    assert.deepEqual(Object.keys(snap.data.lastUsed), ["stories:latest"]);
    assert.ok(!asTenant.events.some((e) => e.type.startsWith("model.") && e.data.model !== "stories:latest"));
    for (const c of [asTenant, asAdmin]) c.close();
  });

  it("lets only admins cancel, and audits it", async () => {
    assert.equal((await api(d, "DELETE", "/api/requests/g1", undefined, bearer(viewer.secret))).status, 403);
    assert.equal((await api(d, "DELETE", "/api/requests/gzzz", undefined, bearer(admin))).status, 404);
    const audit = await api(d, "GET", "/api/audit?action=request.cancel", undefined, bearer(admin));
    assert.equal(audit.json.entries[0].action, "request.cancel");
    assert.equal(audit.json.entries[0].result, "error");
  });

  it("tells the dashboard whether a key is needed before it makes a call", async () => {
    assert.deepEqual((await api(d, "GET", "/ui/auth.json")).json, { authRequired: true });
  });
});
