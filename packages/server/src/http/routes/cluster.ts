import { Type, type Static } from "@sinclair/typebox";
import type { FastifyPluginAsync } from "fastify";
import type { ClusterNode } from "../../cluster/cluster-node.js";
import { LlmosError } from "../../errors.js";
import "../auth/route-scope.js";
import { noBody } from "../body-guards.js";

const NodeParams = Type.Object(
  { name: Type.String({ pattern: "^[a-z0-9][a-z0-9._-]{0,62}$" }) },
  { additionalProperties: false },
);

/**
 * The cluster's operator API (cluster mode only; `admin` scope): `GET /api/cluster` (nodes with state, memory,
 * models and queue; models with where they are stored and loaded), `POST /api/cluster/nodes/:name/drain` (the node
 * takes no new work and finishes what runs) and `POST /api/cluster/nodes/:name/resume`.
 */
export function clusterRoutes(cluster: () => ClusterNode | undefined): FastifyPluginAsync {
  const node = () => {
    const c = cluster();
    if (!c) throw new LlmosError("unavailable", "this node has not joined the cluster yet");
    return c;
  };
  return async (app) => {
    app.get(
      "/api/cluster",
      { config: { scope: "admin" }, schema: { summary: "Cluster status: nodes and models", tags: ["cluster"] } },
      async () => node().status(),
    );
    for (const [action, state] of [
      ["drain", "draining"],
      ["resume", "up"],
    ] as const) {
      app.post<{ Params: Static<typeof NodeParams> }>(
        `/api/cluster/nodes/:name/${action}`,
        {
          config: { scope: "admin" },
          schema: {
            params: NodeParams,
            summary: action === "drain" ? "Drain a node: no new work" : "Resume a drained node",
            tags: ["cluster"],
          },
          preValidation: noBody,
        },
        async (request) => {
          const c = node();
          await c.membership.setState(request.params.name, state);
          return c.status().nodes.find((n) => n.name === request.params.name);
        },
      );
    }
  };
}
