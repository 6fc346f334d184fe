/**
 * The blob fetcher against peers that are real HTTP servers on loopback (node views written by hand) and a real
 * store: a model comes from a peer with its sha256 checked; a transfer cut off halfway resumes from another peer at
 * the byte where it stopped (the Range it asks for says so); bytes that do not match the digest are discarded and
 * the blob comes from another peer; two requests share one transfer; without a peer able to send it the model is
 * pulled from its origin, and without an origin the request fails with `unavailable`.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { BlobFetcher } from "../../src/cluster/blob-fetcher.js";
import { emptyCapacity, type ClusterNode } from "../../src/cluster/node-capacity.js";
import { verifyPeerCall } from "../../src/cluster/peer-auth.js";
import { isLlmosError } from "../../src/errors.js";
import { ModelStore, PullUrlPolicy, serializeManifest, type Manifest } from "../../src/store/index.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { STORIES } from "../support/paths.js";
import { waitFor } from "../support/processes.js";

const SECRET = "blob-transfer-test-secret";
const bytes = readFileSync(STORIES);
const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
const size = bytes.length;
const servers: Server[] = [];
const dirs: string[] = [];

type Behaviour = "good" | "corrupt" | { cutAt: number } | { stallAt: number };

interface Peer {
  name: string;
  url: string;
  server: Server;
  /** The Range header of every GET of the blob (null: none). */
  ranges: Array<string | null>;
  behaviour: Behaviour;
  manifest: Manifest;
}

function manifestFor(from?: string): Manifest {
  return {
    schemaVersion: 1,
    model: { digest, size },
    adapters: [],
    definition: { ...(from ? { from } : {}), parameters: { temperature: 0 }, messages: [] },
    createdAt: new Date().toISOString(),
  };
}

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** A peer serving the routes of http/routes/cluster-peer.ts, checking every call's signature. */
async function peer(name: string, behaviour: Behaviour, manifest = manifestFor()): Promise<Peer> {
  const p = { name, ranges: [] as Array<string | null>, behaviour, manifest } as Peer;
  p.server = createServer((req: IncomingMessage, res: ServerResponse) => {
    try {
      verifyPeerCall(SECRET, req.headers, { method: req.method!, path: req.url! });
    } catch {
      res.writeHead(401).end();
      return;
    }
    if (req.url!.startsWith("/api/cluster/peer/manifest?")) {
      res.writeHead(200, { "content-type": "application/json" }).end(serializeManifest(p.manifest));
      return;
    }
    if (req.url !== `/api/cluster/peer/blobs/${digest}`) return void res.writeHead(404).end();
    const headers = { "accept-ranges": "bytes", etag: `"${digest}"`, "content-type": "application/octet-stream" };
    if (req.method === "HEAD") return void res.writeHead(200, { ...headers, "content-length": size }).end();
    p.ranges.push(req.headers.range ?? null);
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? "")?.[1] ?? 0);
    let body = bytes.subarray(start);
    if (p.behaviour === "corrupt") {
      body = Buffer.from(body);
      body[Math.floor(body.length / 2)]! ^= 0xff;
    }
    res.writeHead(start > 0 ? 206 : 200, {
      ...headers,
      "content-length": body.length,
      ...(start > 0 ? { "content-range": `bytes ${start}-${size - 1}/${size}` } : {}),
    });
    const behave = p.behaviour;
    if (typeof behave === "object" && "stallAt" in behave) {
      // Sends part of the file, then nothing more (a paused process keeps its connections open).
      res.write(body.subarray(0, behave.stallAt - start));
      return;
    }
    if (typeof behave === "object") {
      // Sends part of the file, then dies: the connection drops and the server is gone.
      res.write(body.subarray(0, behave.cutAt - start), () => {
        res.socket?.destroy();
        p.server.close();
        p.server.closeAllConnections();
      });
      return;
    }
    res.end(body);
  });
  p.url = await listen(p.server);
  return p;
}

function node(p: { name: string; url: string }, model = "m:latest", source?: string): ClusterNode {
  const capacity = emptyCapacity();
  capacity.memory.budgetBytes = 1e9;
  capacity.stored = [
    {
      name: model,
      digest,
      sizeBytes: size,
      estimatedBytes: 0,
      minimumBytes: 0,
      blobs: [digest],
      ...(source ? { source } : {}),
    },
  ];
  return {
    name: p.name,
    url: p.url,
    state: "up",
    epoch: 1,
    heartbeatAgeMs: 0,
    lockHeld: true,
    registeredAt: 0,
    capacity,
  };
}

async function openStore(): Promise<ModelStore> {
  const root = mkdtempSync(path.join(tmpdir(), "llmos-blob-transfer-"));
  dirs.push(root);
  return ModelStore.open({ root, pull: { policy: new PullUrlPolicy({ allowHttp: ["127.0.0.1"] }) } });
}

function fetcherFor(store: ModelStore, nodes: ClusterNode[]) {
  const received = new Map<string, number>();
  const fetcher = new BlobFetcher({
    self: "c",
    secret: SECRET,
    store,
    nodes: () => nodes,
    times: { heartbeatMs: 1000, deadAfterMs: 3000 },
    bytesPerSecond: 0,
    onBytes: (peer, n) => received.set(peer, (received.get(peer) ?? 0) + n),
    logger: createLogger("silent"),
  });
  return { fetcher, received };
}

async function blobSha(store: ModelStore): Promise<string> {
  const record = await store.get("m");
  return `sha256:${createHash("sha256").update(readFileSync(record.modelPath)).digest("hex")}`;
}

before(() => assert.ok(size > 100_000));
after(async () => {
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("blob transfer between peers", () => {
  test("a model comes from a peer: manifest and blob, sha256 checked, definition kept", async () => {
    const store = await openStore();
    const a = await peer("a", "good");
    const { fetcher, received } = fetcherFor(store, [node(a)]);
    await fetcher.ensure("m:latest");
    assert.equal(await blobSha(store), digest);
    assert.equal((await store.get("m")).definition.parameters.temperature, 0);
    assert.deepEqual([...received], [["a", size]]);
    assert.deepEqual(fetcher.transfers(), []);
    // Already here: nothing is asked again.
    await fetcher.ensure("m:latest");
    assert.equal(a.ranges.length, 1);
    await store.dispose();
  });

  test("a transfer cut off halfway resumes from another peer at the byte where it stopped", async () => {
    const store = await openStore();
    const a = await peer("a", { cutAt: Math.floor(size / 2) });
    const b = await peer("b", "good");
    const { fetcher, received } = fetcherFor(store, [node(a), node(b)]);
    await fetcher.ensure("m:latest");
    assert.equal(await blobSha(store), digest);
    const fromA = received.get("a") ?? 0;
    assert.ok(fromA > 0 && fromA <= Math.floor(size / 2), `from a: ${fromA}`);
    assert.deepEqual(a.ranges, [null]);
    assert.deepEqual(b.ranges, [`bytes=${fromA}-`], "b was asked for the rest only");
    assert.equal(fromA + (received.get("b") ?? 0), size, "no byte came twice");
    await store.dispose();
  });

  test("a peer that stops sending is given up on once membership sees it gone; the next peer sends the rest", async () => {
    const store = await openStore();
    const a = await peer("a", { stallAt: Math.floor(size / 3) });
    const b = await peer("b", "good");
    const nodes = [node(a), node(b)];
    const { fetcher, received } = fetcherFor(store, nodes);
    const done = fetcher.ensure("m:latest");
    await waitFor(() => ((received.get("a") ?? 0) >= Math.floor(size / 3) ? true : undefined), 10_000, "a stalled");
    assert.equal(b.ranges.length, 0, "a stalled peer alone does not end the transfer");
    // Its session ends (as PostgreSQL reports for a node that is gone).
    nodes[0]!.lockHeld = false;
    await done;
    assert.equal(await blobSha(store), digest);
    assert.deepEqual(b.ranges, [`bytes=${Math.floor(size / 3)}-`]);
    await store.dispose();
  });

  test("a peer that sends corrupt bytes is refused (sha256 mismatch) and the blob comes from another peer", async () => {
    const store = await openStore();
    const a = await peer("a", "corrupt");
    const b = await peer("b", "good");
    const { fetcher } = fetcherFor(store, [node(a), node(b)]);
    await fetcher.ensure("m:latest");
    assert.equal(await blobSha(store), digest);
    assert.deepEqual(a.ranges, [null], "a was asked first");
    assert.deepEqual(b.ranges, [null], "the corrupt download was discarded: b sent the whole blob");
    assert.ok((fetcher.notes.snapshot().get("a")?.corruptUntil?.[digest] ?? 0) > Date.now(), "a is noted corrupt");
    await store.dispose();
  });

  test("concurrent requests for the model share one transfer", async () => {
    const store = await openStore();
    const a = await peer("a", "good");
    const { fetcher } = fetcherFor(store, [node(a)]);
    await Promise.all([fetcher.ensure("m:latest"), fetcher.ensure("m:latest"), fetcher.ensure("m:latest")]);
    assert.equal(a.ranges.length, 1);
    assert.equal(await blobSha(store), digest);
    await store.dispose();
  });

  test("no peer can send it: pulled from its origin; without an origin, `unavailable`", async () => {
    const origin = createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size }).end(bytes);
    });
    const originUrl = `${await listen(origin)}/stories.gguf`;
    const store = await openStore();
    const a = await peer("a", "corrupt", manifestFor(originUrl));
    const { fetcher } = fetcherFor(store, [node(a)]);
    await fetcher.ensure("m:latest");
    assert.equal(await blobSha(store), digest);
    assert.equal(a.ranges.length, 1);

    const bare = await openStore();
    const b = await peer("b", "corrupt");
    const { fetcher: second } = fetcherFor(bare, [node(b)]);
    await assert.rejects(second.ensure("m:latest"), (e: unknown) => isLlmosError(e) && e.code === "unavailable");
    assert.equal(await bare.has("m"), false);
    await store.dispose();
    await bare.dispose();
  });

  test("no peer answers at all: the origin a peer published in its heartbeat is pulled", async () => {
    const origin = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size }).end(bytes);
    });
    const originUrl = `${await listen(origin)}/stories.gguf`;
    // A peer that is listed (its heartbeat still fresh) but refuses connections: its port is closed.
    const gone = createServer();
    const goneUrl = await listen(gone);
    await new Promise((r) => gone.close(r));
    const store = await openStore();
    const { fetcher } = fetcherFor(store, [node({ name: "a", url: goneUrl }, "m:latest", originUrl)]);
    await fetcher.ensure("m:latest");
    assert.equal(await blobSha(store), digest);
    assert.equal((await store.get("m")).definition.from, originUrl);
    await store.dispose();
  });

  test("a model no peer stores is left alone (the request is handled as on one node)", async () => {
    const store = await openStore();
    const a = await peer("a", "good");
    const { fetcher } = fetcherFor(store, [node(a, "other:latest")]);
    await fetcher.ensure("m:latest");
    assert.equal(await store.has("m"), false);
    assert.equal(a.ranges.length, 0);
    await store.dispose();
  });
});
