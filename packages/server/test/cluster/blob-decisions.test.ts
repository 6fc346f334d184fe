/**
 * The pure parts of blob transfers between peers, with hand-written nodes and a hand-driven clock: which peer to ask
 * for a blob, what is noted about a peer that failed or sent corrupt bytes, where a model's origin is, and how a
 * transfer is paced.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ClusterNodeState } from "@llmos/protocol";
import {
  CORRUPT_PEER_MS,
  FAILED_PEER_MS,
  orderBlobSources,
  originOf,
  PeerNotes,
  pullSourceOf,
} from "../../src/cluster/blob-sources.js";
import { Throttle } from "../../src/cluster/blob-throttle.js";
import { emptyCapacity, type ClusterNode } from "../../src/cluster/node-capacity.js";

const times = { heartbeatMs: 1000, deadAfterMs: 3000 };
const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;

function node(
  name: string,
  opts: {
    blobs?: string[];
    busy?: number;
    state?: ClusterNodeState;
    age?: number;
    lock?: boolean;
    source?: string;
  } = {},
): ClusterNode {
  const capacity = emptyCapacity();
  const blobs = opts.blobs ?? [D1];
  capacity.stored = [
    {
      name: "m:latest",
      digest: blobs[0]!,
      sizeBytes: 1,
      estimatedBytes: 0,
      minimumBytes: 0,
      blobs,
      ...(opts.source ? { source: opts.source } : {}),
    },
  ];
  capacity.models = [
    {
      name: "x:latest",
      digest: "",
      state: "ready",
      slots: 1,
      busy: opts.busy ?? 0,
      queued: 0,
      reservedBytes: 0,
      pinned: false,
    },
  ];
  return {
    name,
    url: `http://${name}:1`,
    state: opts.state ?? "up",
    epoch: 1,
    heartbeatAgeMs: opts.age ?? 100,
    lockHeld: opts.lock ?? true,
    registeredAt: 0,
    capacity,
  };
}

const names = (sources: Array<{ name: string }>) => sources.map((s) => s.name);

describe("which peer to ask for a blob", () => {
  test("peers that store it, least busy first, then by name; never self", () => {
    const nodes = [node("c", { busy: 2 }), node("b"), node("a", { busy: 1 }), node("self")];
    assert.deepEqual(names(orderBlobSources({ digest: D1 }, nodes, "self", new Map(), times, 0)), ["b", "a", "c"]);
  });

  test("an adapter's blob is found through the blobs a node publishes; a model by name", () => {
    const nodes = [node("a", { blobs: [D1, D2] }), node("b")];
    assert.deepEqual(names(orderBlobSources({ digest: D2 }, nodes, "self", new Map(), times, 0)), ["a"]);
    assert.deepEqual(names(orderBlobSources({ model: "m:latest" }, nodes, "self", new Map(), times, 0)), ["a", "b"]);
    assert.deepEqual(orderBlobSources({ model: "n:latest" }, nodes, "self", new Map(), times, 0), []);
  });

  test("dead, left, stale or lock-less nodes are not asked; a draining node still serves files", () => {
    const nodes = [
      node("dead", { state: "dead" }),
      node("left", { state: "left" }),
      node("stale", { age: 10_000 }),
      node("gone", { lock: false }),
      node("draining", { state: "draining" }),
    ];
    assert.deepEqual(names(orderBlobSources({ digest: D1 }, nodes, "self", new Map(), times, 0)), ["draining"]);
  });

  test("a peer that sent corrupt bytes of a blob is not asked for it again; one that failed is asked last", () => {
    let now = 1000;
    const notes = new PeerNotes(() => now);
    notes.corrupt("a", D1);
    notes.failed("b");
    const nodes = [
      node("a", { blobs: [D1, D2] }),
      node("b", { blobs: [D1, D2] }),
      node("c", { blobs: [D1, D2], busy: 5 }),
    ];
    const order = (want: { digest: string } | { model: string }) =>
      names(orderBlobSources(want, nodes, "self", notes.snapshot(), times, now));
    assert.deepEqual(order({ digest: D1 }), ["c", "b"]);
    // Another blob of the same peer is still asked for; the manifest too.
    assert.deepEqual(order({ digest: D2 }), ["a", "c", "b"]);
    assert.deepEqual(order({ model: "m:latest" }), ["a", "c", "b"]);
    now += FAILED_PEER_MS + 1;
    assert.deepEqual(order({ digest: D1 }), ["b", "c"]);
    now += CORRUPT_PEER_MS;
    assert.deepEqual(order({ digest: D1 }), ["a", "b", "c"]);
  });

  test("peers already asked in this transfer are skipped", () => {
    const nodes = [node("a"), node("b")];
    assert.deepEqual(names(orderBlobSources({ digest: D1 }, nodes, "self", new Map(), times, 0, new Set(["a"]))), [
      "b",
    ]);
  });
});

describe("a model's origin", () => {
  test("a registry pull is pinned by its manifest digest; Hub and URL pulls keep their reference; imports have none", () => {
    const definition = { from: "/models/x.gguf" };
    assert.equal(
      pullSourceOf({
        origin: { registry: "registry.example.com", repository: "library/m", manifestDigest: D1 },
        definition,
      }),
      `oci://registry.example.com/library/m@${D1}`,
    );
    assert.equal(pullSourceOf({ definition: { from: "hf.co/owner/repo:Q4_K_M" } }), "hf.co/owner/repo:Q4_K_M");
    assert.equal(pullSourceOf({ definition: { from: "https://example.com/m.gguf" } }), "https://example.com/m.gguf");
    assert.equal(pullSourceOf({ definition }), undefined);
    assert.equal(pullSourceOf({ definition: {} }), undefined);
    assert.equal(pullSourceOf({ definition: { from: "other:latest" } }), undefined);
  });

  test("the first node that publishes one names it", () => {
    const nodes = [node("a"), node("b", { source: "https://example.com/m.gguf" })];
    assert.equal(originOf("m:latest", nodes), "https://example.com/m.gguf");
    assert.equal(originOf("n:latest", nodes), undefined);
  });
});

describe("pacing a transfer", () => {
  test("bytes pass at the rate on average; idle time earns no burst; 0 is unlimited", () => {
    let now = 0;
    const t = new Throttle(1_000_000, () => now);
    // 100 kB at 1 MB/s is paid for after 100 ms; a chunk may run 50 ms ahead (the slack).
    assert.equal(t.delayFor(100_000), 50);
    assert.equal(t.delayFor(100_000), 150);
    now = 200;
    assert.equal(t.delayFor(100_000), 50);
    // A long pause earns nothing: the next chunk is paced from now.
    now = 10_000;
    assert.equal(t.delayFor(100_000), 50);
    assert.equal(t.delayFor(1_000_000), 1050);
    const unlimited = new Throttle(0, () => now);
    assert.equal(unlimited.delayFor(1e12), 0);
  });
});
