import { Type, type Static } from "@sinclair/typebox";
import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import { AUDIT_ACTIONS, KEY_SCOPES, type Actor, type AuditAction, type SecurityService } from "../../security/index.js";
import "../auth/route-scope.js";
import { noBody } from "../body-guards.js";

const KeyId = Type.String({ pattern: "^[0-9a-f]{12}$" });
const IdParams = Type.Object({ id: KeyId }, { additionalProperties: false });

const CreateKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    scopes: Type.Array(Type.Union(KEY_SCOPES.map((s) => Type.Literal(s))), {
      minItems: 1,
      maxItems: KEY_SCOPES.length,
    }),
    models: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 256 })),
    rpm: Type.Optional(Type.Integer({ minimum: 1 })),
    tpm: Type.Optional(Type.Integer({ minimum: 1 })),
    tokensPerDay: Type.Optional(Type.Integer({ minimum: 1 })),
    expiresAt: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);

// Query strings stay strings (the app does not coerce types); numbers are parsed below.
const UsageQuery = Type.Object(
  {
    since: Type.Optional(Type.String({ maxLength: 64 })),
    keyId: Type.Optional(Type.String({ maxLength: 64 })),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  },
  { additionalProperties: false },
);

const AuditQuery = Type.Object(
  {
    since: Type.Optional(Type.String({ maxLength: 64 })),
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,5}$" })),
    action: Type.Optional(Type.Union(AUDIT_ACTIONS.map((a) => Type.Literal(a)))),
  },
  { additionalProperties: false },
);

function actorOf(request: FastifyRequest): Actor {
  return { keyId: request.llmosAuth?.key?.id ?? null, remoteAddress: request.llmosAuth?.remoteAddress ?? request.ip };
}

/**
 * Admin API for keys, usage and audit (all `admin` scope):
 * `GET /api/keys`, `POST /api/keys` (201, `{ key, secret }`, secret shown once), `DELETE /api/keys/:id`,
 * `POST /api/keys/:id/rotate` (`{ key, secret }`), `GET /api/usage?since&keyId&model`, `GET /api/audit?since&limit&action`.
 * `keyId=none` in usage selects requests made without a key.
 */
export function securityRoutes(security: SecurityService): FastifyPluginAsync {
  return async (app) => {
    app.get("/api/keys", { config: { scope: "admin" } }, async () => ({ keys: await security.keys.list() }));

    app.post<{ Body: Static<typeof CreateKeyBody> }>(
      "/api/keys",
      { config: { scope: "admin" }, schema: { body: CreateKeyBody } },
      async (request, reply) => {
        const issued = await security.keys.create(request.body, actorOf(request));
        reply.header("cache-control", "no-store");
        return reply.code(201).send(issued);
      },
    );

    app.delete<{ Params: Static<typeof IdParams> }>(
      "/api/keys/:id",
      {
        config: { scope: "admin" },
        schema: { params: IdParams, summary: "Revoke an API key", tags: ["security"] },
        preValidation: noBody,
      },
      async (request) => ({ key: await security.keys.revoke(request.params.id, actorOf(request)) }),
    );

    app.post<{ Params: Static<typeof IdParams> }>(
      "/api/keys/:id/rotate",
      {
        config: { scope: "admin" },
        schema: { params: IdParams, summary: "Rotate an API key's secret", tags: ["security"] },
        preValidation: noBody,
      },
      async (request, reply) => {
        const issued = await security.keys.rotate(request.params.id, actorOf(request));
        reply.header("cache-control", "no-store");
        return issued;
      },
    );

    app.get<{ Querystring: Static<typeof UsageQuery> }>(
      "/api/usage",
      { config: { scope: "admin" }, schema: { querystring: UsageQuery } },
      async (request) => {
        const q = request.query;
        const usage = await security.usage({
          ...(q.since !== undefined ? { since: q.since } : {}),
          ...(q.keyId !== undefined ? { keyId: q.keyId === "none" ? null : q.keyId } : {}),
          ...(q.model !== undefined ? { model: q.model } : {}),
        });
        return { usage };
      },
    );

    app.get<{ Querystring: Static<typeof AuditQuery> }>(
      "/api/audit",
      { config: { scope: "admin" }, schema: { querystring: AuditQuery } },
      async (request) => {
        const q = request.query;
        const entries = await security.audit.query({
          ...(q.since !== undefined ? { since: q.since } : {}),
          ...(q.limit !== undefined ? { limit: Number(q.limit) } : {}),
          ...(q.action !== undefined ? { action: q.action as AuditAction } : {}),
        });
        return { entries };
      },
    );
  };
}
