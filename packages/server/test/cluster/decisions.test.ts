/**
 * The cluster's pure decisions with hand-written nodes: routing (loaded -> stored with room -> best fit -> evicts ->
 * waits, never over a budget, insufficient_capacity at once), membership (deaths, the half-unhealthy guard against
 * rescheduling storms), prompt-prefix affinity, peer-call signatures and the cluster settings.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { decideDeaths, isHealthy, type MemberRow } from "../../src/cluster/membership-decisions.js";
import type { ClusterMembership } from "../../src/cluster/membership.js";
import { emptyCapacity, parseCapacity, type ClusterNode } from "../../src/cluster/node-capacity.js";
import { RequestRouter } from "../../src/cluster/request-router.js";
import { checkPeerBody, peerBody, signPeerCall, verifyPeerCall, PEER_HEADERS } from "../../src/cluster/peer-auth.js";
import { matchedBlocks, prefixChain, PrefixIndex, promptTextOf } from "../../src/cluster/prefix-chain.js";
import { decideRoute, type RoutingDemand, type RoutingNode } from "../../src/cluster/routing.js";
import type { CapacityModel } from "../../src/cluster/node-capacity.js";
import { clusterConfig, loadConfig } from "../../src/config/load.js";
import { isLlmosError } from "../../src/errors.js";

const GB = 1024 ** 3;

function node(name: string, over: Partial<RoutingNode> = {}): RoutingNode {
  return {
    name,
    eligible: true,
    budgetBytes: 4 * GB,
    reservedBytes: 0,
    models: [],
    stored: new Set(),
    prefixes: undefined,
    inflight: 0,
    self: false,
    ...over,
  };
}

function loaded(name: string, over: Partial<CapacityModel> = {}): CapacityModel {
  return {
    name,
    digest: "d",
    state: "ready",
    slots: 2,
    busy: 0,
    queued: 0,
    reservedBytes: 1 * GB,
    pinned: false,
    ...over,
  };
}

const demand = (over: Partial<RoutingDemand> = {}): RoutingDemand => ({
  model: "m:latest",
  estimatedBytes: 1 * GB,
  minimumBytes: 0.5 * GB,
  chain: [],
  ...over,
});

describe("decideRoute", () => {
  test("a node with the model loaded wins over free nodes; the least loaded copy is picked", () => {
    const nodes = [
      node("a"),
      node("b", { models: [loaded("m:latest", { busy: 2, queued: 3 })], reservedBytes: GB }),
      node("c", { models: [loaded("m:latest", { busy: 1 })], reservedBytes: GB }),
    ];
    assert.deepEqual(decideRoute(demand(), nodes), { kind: "node", node: "c", reason: "loaded", affinity: 0 });
  });

  test("prompt-prefix affinity beats a little load: the node that served the conversation keeps it", () => {
    const chain = prefixChain("x".repeat(128 * 8));
    const nodes = [
      node("b", { models: [loaded("m:latest", { busy: 1 })], prefixes: new Set(chain.slice(0, 6)) }),
      node("c", { models: [loaded("m:latest")] }),
    ];
    const d = decideRoute(demand({ chain }), nodes);
    assert.equal(d.kind === "node" && d.node, "b");
    assert.equal(d.kind === "node" && d.affinity, 6 / 8);
    // ... but not a queue many times its slots.
    nodes[0] = node("b", { models: [loaded("m:latest", { busy: 2, queued: 12 })], prefixes: new Set(chain) });
    assert.equal((decideRoute(demand({ chain }), nodes) as { node: string }).node, "c");
  });

  test("scale out: a copy whose queue is as deep as its slots makes a node with the file and room load another", () => {
    const busy = loaded("m:latest", { busy: 2, queued: 2 });
    const nodes = [
      node("a", { models: [busy], reservedBytes: GB }),
      node("b", { stored: new Set(["m:latest"]) }),
      node("c"),
    ];
    assert.deepEqual(decideRoute(demand(), nodes), { kind: "node", node: "b", reason: "scales_out", affinity: 0 });
    // A conversation the busy node holds stays there; a shorter queue stays too; no node with the file: it waits.
    const chain = prefixChain("y".repeat(128 * 4));
    nodes[0] = node("a", { models: [busy], reservedBytes: GB, prefixes: new Set(chain) });
    assert.equal((decideRoute(demand({ chain }), nodes) as { node: string }).node, "a");
    nodes[0] = node("a", { models: [loaded("m:latest", { busy: 2, queued: 1 })], reservedBytes: GB });
    assert.equal((decideRoute(demand(), nodes) as { node: string }).node, "a");
    nodes[0] = node("a", { models: [busy], reservedBytes: GB });
    nodes[1] = node("b");
    assert.equal((decideRoute(demand(), nodes) as { node: string }).node, "a");
  });

  test("no copy loaded: a node with the blob on disk and room, else the best memory fit", () => {
    const nodes = [
      node("a", { budgetBytes: 8 * GB }),
      node("b", { budgetBytes: 2 * GB, stored: new Set(["m:latest"]) }),
      node("c", { budgetBytes: 1.5 * GB }),
    ];
    assert.deepEqual(decideRoute(demand(), nodes), { kind: "node", node: "b", reason: "stored", affinity: 0 });
    nodes[1] = node("b", { budgetBytes: 2 * GB, reservedBytes: 1.8 * GB, stored: new Set(["m:latest"]) });
    // b has the file but no room: the tightest fit that holds it is c (a keeps its large budget for large models).
    assert.deepEqual(decideRoute(demand(), nodes), { kind: "node", node: "c", reason: "fits", affinity: 0 });
  });

  test("room is counted in copies of the model: nodes a few bytes apart are equal and the deciding node keeps it", () => {
    // Three nodes that each received a request for a different model nobody has loaded, at the same moment: free
    // memory a few MiB apart (budgets measured at start) must not send all three models to the same node.
    const placed = ["m1", "m2", "m3"].map((model, i) => {
      const nodes = ["a", "b", "c"].map((n, j) =>
        node(n, {
          budgetBytes: 4 * GB + j * 5 * 1024 ** 2,
          stored: new Set(["m1", "m2", "m3"]),
          self: i === j,
        }),
      );
      return (decideRoute(demand({ model }), nodes) as { node: string }).node;
    });
    assert.deepEqual(placed, ["a", "b", "c"]);
    // A node with room for more copies still wins.
    const nodes = [
      node("a", { self: true, stored: new Set(["m:latest"]), reservedBytes: 2 * GB }),
      node("b", { stored: new Set(["m:latest"]) }),
    ];
    assert.equal((decideRoute(demand(), nodes) as { node: string }).node, "b");
  });

  test("every node full: one that can evict idle models; pinned and busy models are not evictable", () => {
    const nodes = [
      node("a", {
        budgetBytes: 2 * GB,
        reservedBytes: 2 * GB,
        models: [loaded("x", { pinned: true, reservedBytes: 2 * GB })],
      }),
      node("b", {
        budgetBytes: 2 * GB,
        reservedBytes: 2 * GB,
        models: [loaded("y", { busy: 1, reservedBytes: 2 * GB })],
      }),
      node("c", { budgetBytes: 2 * GB, reservedBytes: 2 * GB, models: [loaded("z", { reservedBytes: 2 * GB })] }),
    ];
    assert.deepEqual(decideRoute(demand(), nodes), { kind: "node", node: "c", reason: "evicts", affinity: 0 });
    nodes[2] = node("c", {
      budgetBytes: 2 * GB,
      reservedBytes: 2 * GB,
      models: [loaded("z", { busy: 2, queued: 5, reservedBytes: 2 * GB })],
    });
    assert.deepEqual(decideRoute(demand(), nodes), { kind: "node", node: "a", reason: "waits", affinity: 0 });
  });

  test("a model bigger than every node's budget is insufficient_capacity at once; a small budget is skipped", () => {
    const nodes = [node("a", { budgetBytes: GB }), node("b", { budgetBytes: 0.25 * GB })];
    assert.deepEqual(decideRoute(demand({ minimumBytes: 2 * GB, estimatedBytes: 3 * GB }), nodes), {
      kind: "insufficient_capacity",
      neededBytes: 2 * GB,
      largestBudgetBytes: GB,
    });
    const d = decideRoute(demand({ minimumBytes: 0.5 * GB }), nodes);
    assert.equal(d.kind === "node" && d.node, "a");
  });

  test("draining, suspect or excluded nodes get nothing; none left is no_node", () => {
    const nodes = [node("a", { eligible: false, models: [loaded("m:latest")] }), node("b", { eligible: false })];
    assert.deepEqual(decideRoute(demand(), nodes), { kind: "no_node" });
    nodes.push(node("c"));
    assert.equal((decideRoute(demand(), nodes) as { node: string }).node, "c");
  });

  test("ties go to the deciding node (no hop)", () => {
    const nodes = [
      node("a", { models: [loaded("m:latest")] }),
      node("b", { models: [loaded("m:latest")], self: true }),
    ];
    assert.equal((decideRoute(demand(), nodes) as { node: string }).node, "b");
  });

  test("requests sent and not yet in a heartbeat count: three models spread over three one-model nodes", () => {
    const nodes = ["a", "b", "c"].map((n) => node(n, { budgetBytes: 1.2 * GB }));
    const placed: string[] = [];
    for (const model of ["m1", "m2", "m3"]) {
      const d = decideRoute(demand({ model }), nodes);
      assert.equal(d.kind, "node");
      const target = nodes.find((n) => n.name === (d as { node: string }).node)!;
      target.reservedBytes += GB;
      target.models = [...target.models, loaded(model, { state: "loading" })];
      placed.push(target.name);
    }
    assert.deepEqual(placed.sort(), ["a", "b", "c"]);
  });
});

describe("RequestRouter: memory need from the scheduler's sizing", () => {
  const MiB = 1024 ** 2;
  /** A node row as a heartbeat publishes it: `free` bytes free, `m:latest` stored (a 20 MiB file). */
  function row(name: string, free: number, estimate: { estimatedBytes: number; minimumBytes: number }): ClusterNode {
    const capacity = emptyCapacity();
    capacity.memory.budgetBytes = 2 * GB;
    capacity.memory.reservedBytes = 2 * GB - free;
    capacity.stored = [{ name: "m:latest", digest: "d", sizeBytes: 20 * MiB, ...estimate, blobs: ["d"] }];
    return {
      name,
      url: `http://${name}`,
      state: "up",
      epoch: 1,
      heartbeatAgeMs: 0,
      lockHeld: true,
      registeredAt: 0,
      capacity,
    };
  }
  const routerOver = (nodes: ClusterNode[], local?: { estimatedBytes: number; minimumBytes: number }) =>
    new RequestRouter(
      { nodes: () => nodes } as unknown as ClusterMembership,
      "a",
      { heartbeatMs: 1000, deadAfterMs: 3000 },
      Date.now,
      () => local,
    );
  // A small file with a large KV cache: 20 MiB of weights, 600 MiB with the default context and slots.
  const big = { estimatedBytes: 600 * MiB, minimumBytes: 120 * MiB };

  test("a model whose file is small but whose KV cache is large is not placed where only the file fits", () => {
    // a (the deciding node) has 100 MiB free: the file and a fifth more, not the KV cache. b has 50 MiB free and an
    // idle 1 GiB model it can evict.
    const withIdle = (n: ClusterNode) => {
      n.capacity.models = [loaded("other:latest", { reservedBytes: GB })];
      return n;
    };
    const nodes = [row("a", 100 * MiB, big), withIdle(row("b", 50 * MiB, big))];
    assert.deepEqual(routerOver(nodes, big).route({ model: "m", prompt: "hi" })?.decision, {
      kind: "node",
      node: "b",
      reason: "evicts",
      affinity: 0,
    });
    // Only b published its estimate (a runs an older version): still the estimate decides.
    const mixed = [row("a", 100 * MiB, { estimatedBytes: 0, minimumBytes: 0 }), withIdle(row("b", 50 * MiB, big))];
    assert.equal((routerOver(mixed).route({ model: "m" })?.decision as { node: string }).node, "b");
    // By file size alone (no node published an estimate) the file fits on a: what the estimate prevents.
    const none = { estimatedBytes: 0, minimumBytes: 0 };
    const sizeOnly = [row("a", 100 * MiB, none), withIdle(row("b", 50 * MiB, none))];
    assert.equal((routerOver(sizeOnly).route({ model: "m" })?.decision as { node: string }).node, "a");
  });

  test("this node's own sizing wins over what peers published; the minimum decides insufficient_capacity", () => {
    const small = { estimatedBytes: 30 * MiB, minimumBytes: 25 * MiB };
    const huge = { estimatedBytes: 8 * GB, minimumBytes: 3 * GB };
    const nodes = [row("a", 100 * MiB, small), row("b", 100 * MiB, huge)];
    // Going by the largest published estimate, its smallest context does not fit any node's 2 GiB budget ...
    assert.deepEqual(routerOver(nodes).route({ model: "m" })?.decision, {
      kind: "insufficient_capacity",
      neededBytes: 3 * GB,
      largestBudgetBytes: 2 * GB,
    });
    // ... while this node's scheduler, which stores it, knows it needs 30 MiB here.
    assert.deepEqual(routerOver(nodes, small).route({ model: "m" })?.decision, {
      kind: "node",
      node: "a",
      reason: "stored",
      affinity: 0,
    });
  });
});

describe("membership decisions", () => {
  const times = { heartbeatMs: 1000, deadAfterMs: 3000 };
  const row = (name: string, over: Partial<MemberRow> = {}): MemberRow => ({
    name,
    state: "up",
    epoch: 1,
    heartbeatAgeMs: 200,
    lockHeld: true,
    ...over,
  });

  test("a node whose session ended is dead at once; a stale heartbeat past dead-after too", () => {
    const d = decideDeaths(
      [row("a"), row("b", { lockHeld: false, epoch: 4 }), row("c", { heartbeatAgeMs: 3500 }), row("d"), row("e")],
      times,
      "a",
    );
    assert.deepEqual(d, {
      dead: [
        { name: "b", epoch: 4, why: "session_ended" },
        { name: "c", epoch: 1, why: "heartbeat_timeout" },
      ],
      held: [],
    });
  });

  test("more than half look unhealthy: timed-out nodes are held (no rescheduling storm), ended sessions still die", () => {
    const d = decideDeaths(
      [row("a"), row("b", { heartbeatAgeMs: 5000 }), row("c", { heartbeatAgeMs: 5000 }), row("d", { lockHeld: false })],
      times,
      "a",
    );
    assert.deepEqual(d.dead, [{ name: "d", epoch: 1, why: "session_ended" }]);
    assert.deepEqual(d.held, ["b", "c"]);
  });

  test("the deciding node never declares itself dead; left and dead rows are ignored", () => {
    const d = decideDeaths(
      [row("a", { heartbeatAgeMs: 9000 }), row("b", { state: "left", lockHeld: false }), row("c", { state: "dead" })],
      times,
      "a",
    );
    assert.deepEqual(d, { dead: [], held: [] });
  });

  test("healthy: a member with its session and a heartbeat within two intervals", () => {
    assert.equal(isHealthy(row("a"), times), true);
    assert.equal(isHealthy(row("a", { state: "draining" }), times), true);
    assert.equal(isHealthy(row("a", { heartbeatAgeMs: 2500 }), times), false);
    assert.equal(isHealthy(row("a", { lockHeld: false }), times), false);
    assert.equal(isHealthy(row("a", { state: "dead" }), times), false);
  });
});

describe("prompt-prefix chains", () => {
  test("a conversation's next turn shares every full block of the turn before", () => {
    const turn1 = {
      messages: [
        { role: "system", content: "s".repeat(300) },
        { role: "user", content: "hello" },
      ],
    };
    const turn2 = {
      messages: [...turn1.messages, { role: "assistant", content: "hi there" }, { role: "user", content: "more" }],
    };
    const c1 = prefixChain(promptTextOf(turn1));
    const c2 = prefixChain(promptTextOf(turn2));
    assert.ok(c1.length >= 2);
    assert.deepEqual(c2.slice(0, c1.length), c1);
    assert.equal(matchedBlocks(c2, new Set(c1)), c1.length);
    assert.equal(matchedBlocks(prefixChain("z".repeat(600)), new Set(c1)), 0);
  });

  test("prompt text from every API's shape; partial blocks left out", () => {
    assert.equal(promptTextOf({ system: "s", prompt: "p" }), "system\ns\n\np");
    assert.equal(
      promptTextOf({ messages: [{ role: "user", content: [{ type: "text", text: "a" }, { text: "b" }] }] }),
      "user\nab",
    );
    assert.equal(promptTextOf({ input: ["x", "y"] }), "x");
    assert.deepEqual(prefixChain("a".repeat(127)), []);
  });

  test("the index publishes what the slots hold: a next turn replaces its conversation, a new one evicts the LRU", () => {
    const index = new PrefixIndex(8);
    // Two slots: conversation A, then its next turn (continues it: same slot), then B.
    assert.equal(index.record("m", ["a1", "a2"], 2), true);
    assert.equal(index.record("m", ["a1", "a2", "a3"], 2), false);
    assert.equal(index.record("m", ["b1"], 2), true);
    assert.deepEqual(index.summary().m!.sort(), ["a1", "a2", "a3", "b1"]);
    // A third conversation takes the least recently used slot (A's): A's prefix is not advertised any more.
    assert.equal(index.record("m", ["c1", "c2"], 2), true);
    assert.deepEqual(index.summary().m!.sort(), ["b1", "c1", "c2"]);
    // A branch sharing only a system prompt with B gets a slot of its own (the engine copies the prefix).
    assert.equal(index.record("m", ["b1", "x"], 2), false);
    assert.equal(index.record("m", ["b1", "y"], 2), true);
    assert.deepEqual(index.summary().m!.sort(), ["b1", "x", "y"]);
    // Bounded over all models (the least recently used prompts go), and an unloaded model is forgotten.
    index.record("n", ["n1", "n2", "n3", "n4", "n5", "n6"], 4);
    assert.ok(Object.values(index.summary()).flat().length <= 8);
    assert.deepEqual(index.summary().n, ["n1", "n2", "n3", "n4", "n5", "n6"]);
    index.forget("m");
    assert.equal(index.summary().m, undefined);
  });
});

describe("peer-call signatures", () => {
  const secret = "0123456789abcdef-cluster";
  const call = { method: "POST", path: "/v1/chat/completions", node: "a", time: 1_000_000, fence: "r1:1", body: "{}" };

  test("a signed call verifies; any change to method, path, body, fence or time does not", () => {
    const headers = signPeerCall(secret, call);
    const v = verifyPeerCall(secret, headers, { method: "POST", path: call.path }, call.time + 1000);
    assert.deepEqual(
      { ...v, bodyHash: undefined },
      { node: "a", fence: "r1:1", keyId: undefined, forwardedFor: undefined, bodyHash: undefined },
    );
    checkPeerBody(v, {}); // the body as the receiver parsed it
    const unauthorized = (e: unknown) => isLlmosError(e) && e.status === 401;
    const refused = (h: Record<string, string>, req = { method: "POST", path: call.path }, now = call.time) =>
      assert.throws(() => verifyPeerCall(secret, h, req, now), unauthorized);
    refused(headers, { method: "GET", path: call.path });
    refused(headers, { method: "POST", path: "/api/keys" });
    assert.throws(() => checkPeerBody(v, { x: 1 }), unauthorized, "another body");
    assert.throws(() => checkPeerBody(v, undefined), unauthorized, "the body dropped");
    // Changing the body and its hash header together breaks the signature.
    const other = signPeerCall(secret, { ...call, body: peerBody({ x: 1 }) });
    refused({ ...headers, [PEER_HEADERS.bodyHash]: other[PEER_HEADERS.bodyHash]! });
    const { [PEER_HEADERS.bodyHash]: _hash, ...withoutHash } = headers;
    refused(withoutHash);
    refused({ ...headers, [PEER_HEADERS.fence]: "r1:2" });
    refused({ ...headers, [PEER_HEADERS.key]: "admin-key" }); // a forwarded identity cannot be added
    refused(headers, undefined, call.time + 61_000); // replayed after the window
    refused(signPeerCall("another-secret-of-16", call));
  });

  test("a call that carries an Origin (a browser) is refused even when signed", () => {
    const headers = { ...signPeerCall(secret, call), origin: "http://evil.example" };
    assert.throws(
      () => verifyPeerCall(secret, headers, { method: "POST", path: call.path }, call.time),
      (e) => isLlmosError(e) && e.status === 401,
    );
  });
});

describe("cluster settings", () => {
  const env = { LLMOS_CLUSTER_SECRET: "0123456789abcdef" };
  test("off without a URL; flags win over the environment; defaults", () => {
    assert.equal(clusterConfig({}), undefined);
    const c = clusterConfig(
      { ...env, LLMOS_CLUSTER_URL: "postgres://x/db", LLMOS_NODE_NAME: "envname" },
      { nodeName: "Node-1", advertise: "http://10.0.0.5:11435/" },
    )!;
    assert.equal(c.nodeName, "node-1");
    assert.equal(c.advertise, "http://10.0.0.5:11435");
    assert.equal(c.heartbeatMs, 1000);
    assert.equal(c.deadAfterMs, 3000);
  });

  test("the advertised host name is accepted by the Host check (peers call this node by it)", () => {
    const c = loadConfig({
      env: { ...env, LLMOS_CLUSTER_URL: "postgres://x/db", LLMOS_ADVERTISE: "http://llmos-0.llmos:11435" },
    });
    assert.ok(c.allowedHosts.includes("llmos-0.llmos"));
  });

  test("refuses a missing or short secret, a non-postgres URL, a bad name or advertise URL", () => {
    assert.throws(() => clusterConfig({ LLMOS_CLUSTER_URL: "postgres://x/db" }), /LLMOS_CLUSTER_SECRET/);
    assert.throws(() => clusterConfig({ ...env, LLMOS_CLUSTER_URL: "mysql://x/db" }), /postgres/);
    assert.throws(() => clusterConfig({ ...env }, { cluster: "postgres://x", nodeName: "a b" }), /node name/);
    assert.throws(() => clusterConfig({ ...env }, { cluster: "postgres://x", advertise: "10.0.0.5" }), /advertise/);
    assert.throws(
      () => clusterConfig({ ...env, LLMOS_CLUSTER_URL: "postgres://x", LLMOS_CLUSTER_DEAD_AFTER: "1s" }),
      /twice/,
    );
  });
});

test("capacity columns from any version parse with defaults", () => {
  const c = parseCapacity({ threads: 2, memory: { budgetBytes: 5 } });
  assert.equal(c.threads, 2);
  assert.equal(c.memory.budgetBytes, 5);
  assert.deepEqual(c.models, []);
  assert.deepEqual(parseCapacity(null).prefixes, {});
});
