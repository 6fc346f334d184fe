/**
 * The forwarder against peers that are real HTTP servers on loopback (a node view written by hand): a peer that
 * drops the connection before answering is replaced by the next best node, each attempt with its own fence; the
 * signature verifies at the peer; after the retries the request fails as `unavailable`; fences are claimed once.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { ClusterMembership } from "../../src/cluster/membership.js";
import { emptyCapacity, type ClusterNode } from "../../src/cluster/node-capacity.js";
import { PEER_HEADERS, verifyPeerCall } from "../../src/cluster/peer-auth.js";
import { FenceRegistry, PeerForwarder } from "../../src/cluster/peer-forwarder.js";
import { RequestRouter } from "../../src/cluster/request-router.js";
import { pipeAnswer } from "../../src/http/cluster-forwarding.js";
import { isLlmosError } from "../../src/errors.js";
import { createLogger } from "../../src/telemetry/logger.js";

const SECRET = "forwarder-test-secret-123";
const servers: Server[] = [];
after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

async function peer(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<string> {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => handler(req, res, body));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

function node(name: string, url: string, queued: number): ClusterNode {
  const capacity = emptyCapacity();
  capacity.memory.budgetBytes = 1e9;
  capacity.stored = [{ name: "m:latest", digest: "d", sizeBytes: 1000, estimatedBytes: 0, minimumBytes: 0, blobs: [] }];
  capacity.models = [
    { name: "m:latest", digest: "d", state: "ready", slots: 4, busy: 0, queued, reservedBytes: 1000, pinned: false },
  ];
  return { name, url, state: "up", epoch: 1, heartbeatAgeMs: 0, lockHeld: true, registeredAt: 0, capacity };
}

function forwarderOver(nodes: ClusterNode[]) {
  const membership = { nodes: () => nodes } as unknown as ClusterMembership;
  const router = new RequestRouter(membership, "self", { heartbeatMs: 1000, deadAfterMs: 3000 });
  return { router, forwarder: new PeerForwarder(router, "self", SECRET, createLogger("silent")) };
}

const input = (signal = new AbortController().signal) => ({
  method: "POST",
  path: "/api/generate",
  body: { model: "m", prompt: "hi" },
  keyId: "k1",
  clientAddress: "127.0.0.1",
  signal,
});

async function drain(answer: NonNullable<Awaited<ReturnType<PeerForwarder["forward"]>>>): Promise<string> {
  let text = Buffer.from(answer.first).toString();
  for (;;) {
    const { done, value } = await answer.rest.read();
    if (done) break;
    text += Buffer.from(value).toString();
  }
  answer.done();
  return text;
}

describe("PeerForwarder", () => {
  test("a peer lost before its answer began: the request goes to the next node, each attempt fenced", async () => {
    const fences: string[] = [];
    const dropping = await peer((req) => {
      fences.push(String(req.headers[PEER_HEADERS.fence]));
      req.socket.destroy();
    });
    const answering = await peer((req, res, body) => {
      fences.push(String(req.headers[PEER_HEADERS.fence]));
      const v = verifyPeerCall(SECRET, req.headers, { method: req.method!, path: req.url! });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ranBy: "second", keyId: v.keyId, body: JSON.parse(body) }));
    });
    // The dropping node looks best (empty queue), the answering one second.
    const { router, forwarder } = forwarderOver([node("first", dropping, 0), node("second", answering, 3)]);
    const routed = router.route(input().body)!;
    assert.equal(routed.decision.kind === "node" && routed.decision.node, "first");
    const answer = await forwarder.forward(input(), routed);
    assert.ok(answer);
    assert.equal(answer.node, "second");
    const json = JSON.parse(await drain(answer));
    assert.deepEqual(json, { ranBy: "second", keyId: "k1", body: { model: "m", prompt: "hi" } });
    assert.equal(fences.length, 2);
    const [id1, n1] = fences[0]!.split(":");
    const [id2, n2] = fences[1]!.split(":");
    assert.equal(id1, id2);
    assert.deepEqual([n1, n2], ["1", "2"]);
  });

  test("every node lost: unavailable after at most two re-dispatches", async () => {
    let attempts = 0;
    const urls = await Promise.all(
      [0, 1, 2, 3].map(() =>
        peer((req) => {
          attempts++;
          req.socket.destroy();
        }),
      ),
    );
    const { router, forwarder } = forwarderOver(urls.map((u, i) => node(`n${i}`, u, i)));
    await assert.rejects(
      forwarder.forward(input(), router.route(input().body)!),
      (e) => isLlmosError(e) && e.code === "unavailable",
    );
    assert.equal(attempts, 3);
  });

  test("a stream under way when its node is lost ends with a node_lost error event; the client keeps what it got", async () => {
    const streaming = await peer((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write('data: {"choices":[{"delta":{"content":"Once"}}]}\n\n');
      setTimeout(() => res.socket?.destroy(), 50); // the node dies mid-answer
    });
    const { router, forwarder } = forwarderOver([node("streamer", streaming, 0)]);
    const front = createServer((_req, res) => {
      void forwarder.forward(input(), router.route(input().body)!).then((answer) => pipeAnswer(res, answer!));
    });
    servers.push(front);
    await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
    const res = await fetch(`http://127.0.0.1:${(front.address() as { port: number }).port}/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-llmos-node"), "streamer");
    const text = await res.text();
    assert.match(text, /"content":"Once"/);
    assert.match(text, /event: error\ndata: \{"error":\{"code":"node_lost"/);
  });

  test("a fence is claimed once", () => {
    const fences = new FenceRegistry(1000);
    assert.equal(fences.claim("r:1", 0), true);
    assert.equal(fences.claim("r:1", 10), false);
    assert.equal(fences.claim("r:2", 10), true);
    assert.equal(fences.claim("r:1", 5000), true, "forgotten after the signature window");
  });
});
