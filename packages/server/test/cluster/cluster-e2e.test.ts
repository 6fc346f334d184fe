/**
 * Three real `llmos serve --cluster` processes on one PostgreSQL (test/support/cluster.ts), as an operator and an
 * attacker would see them: membership, keys and limits across nodes, a paused node fenced, a killed node declared
 * dead, drain from the CLI's API.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { homePaths } from "../../src/config/config.js";
import type { ClusterStatus } from "@llmos/protocol";
import { STORIES, STORIES_GOLDEN } from "../support/paths.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import { waitFor } from "../support/processes.js";

let cluster: TestCluster;
let adminKey = "";

async function call(url: string, method: string, path: string, key?: string, body?: unknown) {
  const res = await fetch(url + path, {
    method,
    headers: {
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, node: res.headers.get("x-llmos-node") };
}

/** An admin API key once the test made one, else the node's admin token (loopback admin calls need one). */
function admin(node: string): string {
  return adminKey || readFileSync(homePaths(cluster.node(node).home).adminToken, "utf8").trim();
}

async function status(node: string): Promise<ClusterStatus> {
  const r = await call(cluster.node(node).url, "GET", "/api/cluster", admin(node));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json as ClusterStatus;
}

before(async () => {
  cluster = await startTestCluster([
    { name: "a", models: [[STORIES, "stories"]] },
    { name: "b", models: [[STORIES, "stories"]] },
    { name: "c" },
  ]);
});
after(async () => {
  await cluster?.stop();
});

describe("cluster of three nodes", { timeout: 240_000 }, () => {
  test("is up in 20 s and every node lists three healthy nodes", async () => {
    // Spawn to every node ready (PostgreSQL's initdb not counted); a generous bound on a shared 2-core machine.
    assert.ok(cluster.nodesUpMs < 20_000, `nodes up in ${cluster.nodesUpMs} ms`);
    for (const n of ["a", "b", "c"]) {
      const s = await waitFor(
        async () => {
          const st = await status(n);
          return st.nodes.filter((x) => x.healthy && x.state === "up").length === 3 ? st : undefined;
        },
        5000,
        `three healthy nodes seen from ${n}`,
      );
      assert.equal(s.self, n);
      assert.equal(s.database, true);
    }
    // Models imported after start are published with the next heartbeats.
    for (const n of ["a", "b", "c"]) {
      const models = await waitFor(
        async () => {
          const m = (await status(n)).models.map((x) => [x.name, x.storedOn]);
          return m.length === 1 && (m[0]![1] as string[]).length === 2 ? m : undefined;
        },
        5000,
        `stored models seen from ${n}`,
      );
      assert.deepEqual(models, [["stories:latest", ["a", "b"]]]);
    }
  });

  test("every metric of a node carries its node label", async () => {
    const res = await fetch(`${cluster.node("b").url}/metrics`, { headers: { authorization: `Bearer ${admin("b")}` } });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.match(text, /llmos_[a-z_]+\{[^}]*node="b"/);
  });

  test("a key created on A works on C within 1 s; revoked on B it gets 401 everywhere within 1 s", async () => {
    const [a, b, c] = ["a", "b", "c"].map((n) => cluster.node(n).url) as [string, string, string];
    const made = await call(a, "POST", "/api/keys", admin("a"), { name: "admin", scopes: ["admin"] });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    adminKey = made.json.secret;
    const created = await call(a, "POST", "/api/keys", adminKey, { name: "app", scopes: ["inference", "models:read"] });
    assert.equal(created.status, 201);
    const secret = created.json.secret as string;
    const t0 = Date.now();
    await waitFor(async () => ((await call(c, "GET", "/v1/models", secret)).status === 200 ? true : undefined), 1000);
    // Auth is on everywhere now (each node re-reads "does any key exist" at least every second).
    await waitFor(async () => ((await call(c, "GET", "/v1/models")).status === 401 ? true : undefined), 1500);
    assert.ok(Date.now() - t0 <= 1000);

    assert.equal((await call(b, "DELETE", `/api/keys/${created.json.key.id}`, adminKey)).status, 200);
    const revokedAt = Date.now();
    for (const url of [a, b, c])
      await waitFor(
        async () => ((await call(url, "GET", "/v1/models", secret)).status === 401 ? true : undefined),
        1000,
      );
    assert.ok(Date.now() - revokedAt <= 1500, `revocation took ${Date.now() - revokedAt} ms`);
  });

  test("a 60 rpm key driven at 180 requests spread over the three nodes admits 60 +- 2", async () => {
    const created = await call(cluster.node("a").url, "POST", "/api/keys", adminKey, {
      name: "limited",
      scopes: ["inference"],
      rpm: 60,
    });
    const secret = created.json.secret as string;
    const results = await Promise.all(
      Array.from({ length: 180 }, (_, i) =>
        // A model nobody has: admission happens first, then a 404 (cheap: no inference runs).
        call(cluster.nodes[i % 3]!.url, "POST", "/v1/chat/completions", secret, {
          model: "nobody-has-this",
          messages: [{ role: "user", content: "hi" }],
        }),
      ),
    );
    const admitted = results.filter((r) => r.status !== 429).length;
    assert.ok(admitted >= 58 && admitted <= 62, `admitted ${admitted}`);
    assert.ok(results.every((r) => r.status === 429 || r.status === 404));
  });

  test("drain and resume a node through the API; the state is seen by every node", async () => {
    const r = await call(cluster.node("a").url, "POST", "/api/cluster/nodes/c/drain", adminKey);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.state, "draining");
    await waitFor(
      async () => ((await status("b")).nodes.find((n) => n.name === "c")?.state === "draining" ? true : undefined),
      5000,
    );
    assert.equal((await call(cluster.node("b").url, "POST", "/api/cluster/nodes/nope/drain", adminKey)).status, 404);
    assert.equal((await call(cluster.node("b").url, "POST", "/api/cluster/nodes/c/resume", adminKey)).json.state, "up");
  });

  test("the operator routes refuse a request without a key, a key without the admin scope, and another Origin", async () => {
    const b = cluster.node("b").url;
    const inference = await call(b, "POST", "/api/keys", adminKey, { name: "no-admin", scopes: ["inference"] });
    assert.equal(inference.status, 201);
    for (const [method, route] of [
      ["GET", "/api/cluster"],
      ["POST", "/api/cluster/nodes/c/drain"],
      ["POST", "/api/cluster/nodes/c/resume"],
    ] as const) {
      assert.equal((await call(b, method, route)).status, 401, `${method} ${route} without a key`);
      assert.equal(
        (await call(b, method, route, inference.json.secret)).status,
        403,
        `${method} ${route} inference key`,
      );
      const foreign = await fetch(b + route, {
        method,
        headers: { authorization: `Bearer ${adminKey}`, origin: "https://evil.example" },
      });
      assert.equal(foreign.status, 403, `${method} ${route} from another Origin`);
    }
    assert.equal((await status("b")).nodes.find((n) => n.name === "c")?.state, "up");
  });

  test("a request sent to a node without the model runs on a node that has it; the answer comes back unchanged", async () => {
    const c = cluster.node("c").url;
    const gen = await call(c, "POST", "/api/generate", adminKey, {
      model: "stories",
      prompt: "Once upon a time",
      stream: false,
      options: { temperature: 0, num_predict: 20 },
    });
    assert.equal(gen.status, 200, JSON.stringify(gen.json));
    assert.ok(gen.node === "a" || gen.node === "b", `ran on ${gen.node}`);
    assert.ok(STORIES_GOLDEN.startsWith(gen.json.response.trim().slice(0, 20)), gen.json.response);
    const ranOn = gen.node!;
    // Streamed through the OpenAI API: chunks pass through unchanged, and the copy loaded wins over the other node.
    const res = await fetch(`${c}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${adminKey}` },
      body: JSON.stringify({
        model: "stories",
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 8,
        stream: true,
      }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-llmos-node"), ranOn);
    assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
    const text = await res.text();
    assert.match(text, /chat\.completion\.chunk/);
    assert.match(text, /data: \[DONE\]/);
    // Sent to the other holder, it still lands where the model is loaded.
    const other = ranOn === "a" ? "b" : "a";
    // Once a heartbeat has shown the loaded copy to the other node.
    await waitFor(
      async () => ((await status(other)).models[0]?.loadedOn.includes(ranOn) ? true : undefined),
      5000,
      "loaded copy published",
    );
    const again = await call(cluster.node(other).url, "POST", "/api/generate", adminKey, {
      model: "stories",
      prompt: "Once upon a time",
      stream: false,
      options: { num_predict: 2 },
    });
    assert.equal(again.node, ranOn);
    // A forged peer call (no valid signature) is refused.
    const forged = await fetch(`${cluster.node(ranOn).url}/api/generate`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-llmos-peer-node": "c",
        "x-llmos-peer-time": String(Date.now()),
        "x-llmos-peer-signature": "0".repeat(64),
      },
      body: JSON.stringify({ model: "stories", prompt: "x", stream: false }),
    });
    assert.equal(forged.status, 401);
  });

  test("kill -STOP for 5 s then -CONT: the paused node finds its epoch stale, stops its runners, registers again", async () => {
    const gen0 = await call(cluster.node("c").url, "POST", "/api/generate", adminKey, {
      model: "stories",
      prompt: "Once",
      stream: false,
      options: { num_predict: 2 },
    });
    const b = cluster.node(gen0.node!);
    const gen = await call(b.url, "POST", "/api/generate", adminKey, {
      model: "stories",
      prompt: "Once upon a time",
      stream: false,
      options: { num_predict: 4 },
    });
    assert.equal(gen.status, 200, JSON.stringify(gen.json));
    const ps = await call(b.url, "GET", "/api/ps", adminKey);
    const runnerPid = ps.json.models[0].runnerPid as number;
    assert.ok(runnerPid > 0);
    const epoch = (await status("c")).nodes.find((n) => n.name === b.name)!.epoch;

    b.process.kill("SIGSTOP");
    const stoppedAt = Date.now();
    await waitFor(
      async () => ((await status("c")).nodes.find((n) => n.name === b.name)?.state === "dead" ? true : undefined),
      10_000,
      "paused node declared dead",
    );
    const deadAfter = Date.now() - stoppedAt;
    await new Promise((r) => setTimeout(r, Math.max(0, 5000 - (Date.now() - stoppedAt))));
    b.process.kill("SIGCONT");
    const back = await waitFor(
      async () => {
        const n = (await status("c")).nodes.find((x) => x.name === b.name);
        return n && n.state === "up" && n.epoch > epoch ? n : undefined;
      },
      15_000,
      "paused node registered again",
    );
    assert.ok(back.healthy || back.heartbeatAgeMs < 3000);
    assert.ok(deadAfter < 6000, `declared dead after ${deadAfter} ms`);
    // The old registration's runner is gone: nothing is left generating for requests others took over.
    await waitFor(() => (existsSync(`/proc/${runnerPid}`) ? undefined : true), 15_000, "old runner gone");
    assert.ok(b.logs.some((l) => l.includes("registration is stale")));
  });

  test("kill -9 of the node running 20 queued requests: dead within 3 s, every request completes elsewhere", async () => {
    const c = cluster.node("c").url;
    const body = (i: number) => ({
      model: "stories",
      prompt: `Once upon a time ${i}`,
      stream: false,
      options: { num_predict: 400 },
    });
    const warm = await call(c, "POST", "/api/generate", adminKey, { ...body(0), options: { num_predict: 1 } });
    const victim = cluster.node(warm.node!);
    const survivor = victim.name === "a" ? "b" : "a";
    const requests = Array.from({ length: 20 }, (_, i) => call(c, "POST", "/api/generate", adminKey, body(i)));
    // Kill once the victim has requests running and queued.
    await waitFor(
      async () => {
        const ps = await call(victim.url, "GET", "/api/ps", adminKey).catch(() => undefined);
        const m = ps?.json?.models?.[0];
        return m && m.queued > 0 ? true : undefined;
      },
      20_000,
      "requests queued on the victim",
    ).catch(() => undefined);
    victim.process.kill("SIGKILL");
    const killedAt = Date.now();
    await waitFor(
      async () => ((await status("c")).nodes.find((n) => n.name === victim.name)?.state === "dead" ? true : undefined),
      10_000,
      "victim declared dead",
    );
    const took = Date.now() - killedAt;
    const results = await Promise.all(requests);
    assert.ok(took <= 3000, `declared dead after ${took} ms`);
    for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.json));
    const moved = results.filter((r) => r.node === survivor).length;
    assert.ok(moved > 0, "requests completed on the surviving node");
    assert.ok(results.every((r) => r.node === survivor || r.node === victim.name));
  });
});
