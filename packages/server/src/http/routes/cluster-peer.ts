import path from "node:path";
import send from "@fastify/send";
import { Type, type Static } from "@sinclair/typebox";
import type { FastifyPluginAsync } from "fastify";
import { Throttle, throttleReadable } from "../../cluster/blob-throttle.js";
import { LlmosError } from "../../errors.js";
import type { ModelStore } from "../../store/index.js";
import type { Logger } from "../../telemetry/logger.js";
import "../auth/route-scope.js";

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const BlobParams = Type.Object({ digest: Type.String({ maxLength: 100 }) }, { additionalProperties: false });
const ManifestQuery = Type.Object(
  { model: Type.String({ minLength: 1, maxLength: 300 }) },
  { additionalProperties: false },
);

export interface ClusterPeerRoutesOptions {
  store: ModelStore;
  /** LLMOS_CLUSTER_TRANSFER_RATE: bytes/s each blob sent is paced to; <= 0 unlimited. */
  bytesPerSecond: number;
  logger: Logger;
}

/**
 * What a node serves its peers to copy a model (cluster mode only; scope `peer`: signed node-to-node calls, never an
 * API key, the admin token or a browser): `GET /api/cluster/peer/manifest?model=` (the manifest as stored) and
 * `GET|HEAD /api/cluster/peer/blobs/:digest` (a blob by its sha256, with single byte ranges: `206` and
 * `Content-Range`, `416` past the end; `ETag` = the digest; `404` for a blob this node does not have). Only blobs,
 * addressed by digest: no name or path reaches the file system.
 */
export function clusterPeerRoutes(options: ClusterPeerRoutesOptions): FastifyPluginAsync {
  const { store, logger } = options;
  return async (app) => {
    app.get<{ Querystring: Static<typeof ManifestQuery> }>(
      "/api/cluster/peer/manifest",
      {
        config: { scope: "peer" },
        schema: { querystring: ManifestQuery, summary: "A model's manifest, for a peer copying it", tags: ["cluster"] },
      },
      async (request) => store.manifest(request.query.model),
    );

    app.route<{ Params: Static<typeof BlobParams> }>({
      method: ["GET", "HEAD"],
      url: "/api/cluster/peer/blobs/:digest",
      config: { scope: "peer" },
      schema: {
        params: BlobParams,
        summary: "A blob by digest (byte ranges), for a peer copying it",
        tags: ["cluster"],
      },
      handler: async (request, reply) => {
        const digest = request.params.digest;
        if (!DIGEST.test(digest))
          throw new LlmosError("invalid_request", "a blob is named by its digest: sha256:<64 lower-case hex digits>");
        const file = store.blobPath(digest);
        const etag = `"${digest}"`;
        // A range applies unless If-Range names another version (a blob's only version is its digest).
        const ifRange = request.headers["if-range"];
        const range = ifRange === undefined || ifRange === etag ? request.headers.range : undefined;
        const result = await send(
          { method: request.method, headers: range !== undefined ? { range } : {} } as never,
          path.basename(file),
          {
            root: path.dirname(file),
            acceptRanges: true,
            etag: false,
            lastModified: false,
            cacheControl: false,
            contentType: false,
            dotfiles: "deny",
            index: false,
            extensions: false,
          },
        );
        if (result.type !== "file") {
          result.stream.destroy();
          if (result.statusCode === 416)
            return reply.code(416).header("content-range", result.headers["Content-Range"]).send();
          if (result.statusCode === 404) throw new LlmosError("not_found", `blob ${digest} is not stored on this node`);
          throw new LlmosError("internal", `blob ${digest} cannot be read (HTTP ${result.statusCode})`);
        }
        const peer = request.headers["x-llmos-peer-node"];
        const contentRange = result.headers["Content-Range"];
        logger.info(
          { peer, digest, range: contentRange ?? null, bytes: Number(result.headers["Content-Length"]) },
          request.method === "HEAD" ? "a peer asked about a blob" : "sending a blob to a peer",
        );
        reply
          .code(result.statusCode)
          .header("content-type", "application/octet-stream")
          .header("content-length", result.headers["Content-Length"])
          .header("accept-ranges", "bytes")
          .header("etag", etag);
        if (contentRange) reply.header("content-range", contentRange);
        if (request.method === "HEAD") {
          result.stream.destroy();
          return reply.send();
        }
        return reply.send(throttleReadable(result.stream, new Throttle(options.bytesPerSecond)));
      },
    });
  };
}
