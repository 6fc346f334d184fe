import { Type, type Static } from "@sinclair/typebox";
import type { FastifyPluginAsync } from "fastify";
import { LlmosError } from "../../errors.js";
import { noBody } from "../body-guards.js";
import type { HttpDeps } from "../deps.js";
import { liveAccessOf, visibleRequest } from "../live-access.js";

const IdParams = Type.Object({ id: Type.String({ pattern: "^g[0-9a-z]{1,12}$" }) }, { additionalProperties: false });

/** Requests in flight: `GET /api/requests` (a key sees its own, an admin all) and `DELETE /api/requests/:id` (admin). */
export function requestRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.get(
      "/api/requests",
      {
        schema: { summary: "Requests queued and running: model, key, tokens so far, age", tags: ["runtime"] },
        config: { scope: "metrics" },
      },
      async (request) => {
        const access = liveAccessOf(request);
        return { requests: deps.metrics.requests.list().filter((r) => visibleRequest(access, r)) };
      },
    );

    app.delete<{ Params: Static<typeof IdParams> }>(
      "/api/requests/:id",
      {
        schema: {
          params: IdParams,
          summary: "Cancel a request: a queued one leaves its queue, a running one stops at the next token",
          tags: ["runtime"],
        },
        config: { scope: "admin", audit: "request.cancel" },
        preValidation: noBody,
      },
      async (request) => {
        const tracked = deps.metrics.requests.get(request.params.id);
        if (!tracked) throw new LlmosError("not_found", `no request ${request.params.id} is queued or running`);
        tracked.cancel();
        return { cancelled: request.params.id, model: tracked.info.model, state: tracked.info.state };
      },
    );
  };
}
