/**
 * Cluster mode's data path in HTTP: after auth and admission (the receiving node's rate limits count the request
 * once), an inference request whose best node is another one is forwarded there and its answer is passed back
 * unchanged (cluster/peer-forwarder.ts). A request that runs here for a model this node does not store waits while
 * the model is fetched from a peer that stores it (cluster/blob-fetcher.ts). Requests that run here, forwarded or
 * not, note their prompt's prefix chain for affinity, and every answer says which node ran it (`x-llmos-node`).
 */
import type { ServerResponse } from "node:http";
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { ClusterNode } from "../cluster/cluster-node.js";
import { PEER_HEADERS } from "../cluster/peer-auth.js";
import { LlmosError } from "../errors.js";
import { routeScopeOf } from "./auth/auth-plugin.js";

export const NODE_HEADER = "x-llmos-node";

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"]);

export function clusterForwarding(cluster: () => ClusterNode | undefined): FastifyPluginAsync {
  const plugin: FastifyPluginAsync = async (app: FastifyInstance) => {
    app.addHook("preHandler", async (request, reply) => {
      const node = cluster();
      if (!node || request.method !== "POST" || routeScopeOf(request) !== "inference") return;
      reply.header(NODE_HEADER, node.name);
      if (request.llmosAuth?.via === "peer") {
        const fence = request.headers[PEER_HEADERS.fence];
        if (typeof fence === "string" && !node.fences.claim(fence))
          throw new LlmosError("conflict", "this forwarded request attempt already ran here");
        await runHere(node, request, reply);
        return;
      }
      const routed = node.router.route(request.body);
      if (!routed) return;
      if (routed.decision.kind === "insufficient_capacity")
        throw new LlmosError(
          "insufficient_capacity",
          `model ${routed.model} needs ${routed.decision.neededBytes} bytes of memory; the largest node's budget is ${routed.decision.largestBudgetBytes}`,
          { neededBytes: routed.decision.neededBytes, largestBudgetBytes: routed.decision.largestBudgetBytes },
        );
      if (routed.decision.kind !== "node" || routed.decision.node === node.name) {
        await runHere(node, request, reply);
        return;
      }
      const client = new AbortController();
      request.raw.once("close", () => {
        if (!reply.raw.writableFinished) client.abort();
      });
      const answer = await node.forwarder.forward(
        {
          method: request.method,
          path: request.url,
          body: request.body,
          keyId: request.llmosAuth?.key?.id,
          clientAddress: request.llmosAuth?.remoteAddress ?? request.ip,
          signal: client.signal,
        },
        routed,
      );
      if (!answer) {
        await runHere(node, request, reply);
        return;
      }
      await passOn(reply, answer);
    });
  };
  (plugin as unknown as Record<symbol, unknown>)[Symbol.for("skip-override")] = true;
  (plugin as unknown as Record<symbol, unknown>)[Symbol.for("fastify.display-name")] = "llmos-cluster-forwarding";
  return plugin;
}

/**
 * Before a request runs on this node: its model is fetched from a peer when this node does not store it (the request
 * waits, as for a model loading; the client going away ends the wait, not the transfer), and its prompt is noted for
 * affinity. It counts as in flight here until its answer ends, so that requests this node routes meanwhile see it
 * before a heartbeat shows it (two new conversations arriving together are spread instead of sharing its slots).
 */
async function runHere(node: ClusterNode, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.raw.once("close", node.router.begin(node.name));
  // The response closing before it was written means the client went away.
  const gone = new AbortController();
  const onClose = () => gone.abort();
  reply.raw.once("close", onClose);
  try {
    await node.ensureModel(request.body, gone.signal);
  } finally {
    reply.raw.off("close", onClose);
  }
  node.noteServed(request.body);
}

/** Writes the forwarded answer to the client as it arrives; a node lost mid-answer ends it with `node_lost`. */
async function passOn(
  reply: FastifyReply,
  answer: NonNullable<Awaited<ReturnType<ClusterNode["forwarder"]["forward"]>>>,
): Promise<void> {
  reply.hijack();
  await pipeAnswer(reply.raw, answer);
}

/** Writes `answer` to `raw` (status, headers, body as it arrives); a node lost mid-answer ends it with `node_lost`. */
export async function pipeAnswer(
  raw: ServerResponse,
  answer: NonNullable<Awaited<ReturnType<ClusterNode["forwarder"]["forward"]>>>,
): Promise<void> {
  const headers: Record<string, string> = {};
  answer.headers.forEach((value, name) => {
    if (!HOP_BY_HOP.has(name)) headers[name] = value;
  });
  headers[NODE_HEADER] = answer.node;
  raw.writeHead(answer.status, headers);
  const type = headers["content-type"] ?? "";
  try {
    if (answer.first.length > 0) raw.write(answer.first);
    for (;;) {
      const { done, value } = await answer.rest.read();
      if (done) break;
      raw.write(value);
    }
  } catch {
    if (!raw.destroyed) {
      const error = { code: "node_lost", message: `node ${answer.node} was lost while answering` };
      if (type.includes("text/event-stream")) raw.write(`event: error\ndata: ${JSON.stringify({ error })}\n\n`);
      else if (type.includes("ndjson")) raw.write(`${JSON.stringify({ error: error.message, code: error.code })}\n`);
    }
  } finally {
    answer.done();
    raw.end();
  }
}
