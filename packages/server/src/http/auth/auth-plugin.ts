import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { LlmosError, isLlmosError } from "../../errors.js";
import {
  hasScope,
  isLoopbackAddress,
  KEY_PREFIX,
  type AuditResult,
  type KeyRecord,
  type SecurityService,
} from "../../security/index.js";
import { isProxied, peerAddress, presentedCredential } from "./credentials.js";
import { applyKeepAlivePolicy } from "./keep-alive-policy.js";
import { setRateLimitHeaders, setRetryAfter } from "./rate-limit-headers.js";
import { modelsOfRequest } from "./request-models.js";
import type { LlmosAuth, RouteScope } from "./route-scope.js";
import { estimateRequestTokens } from "./token-estimate.js";

/** Options of `authPlugin`. */
export interface AuthPluginOptions {
  /** URLs (route patterns) that are public even without a declared scope. Default `/healthz`, `/readyz`. */
  publicUrls?: readonly string[];
  /** Command shown in the "no key exists" refusal. Default `llmos keys create`. */
  createKeyHint?: string;
  /** Longest keep-alive a key without `models:write` may ask for (LLMOS_MAX_KEEP_ALIVE). Default 30 minutes. */
  maxKeepAliveMs?: number;
  /**
   * Cluster mode: checks a node-to-node call (a request another node forwarded). Returns undefined when the request
   * does not claim to be one; throws `unauthorized` when it claims to and does not verify. A verified call runs
   * as the key the forwarding node authenticated (already admitted by that node's rate limits). Its `checkBody`
   * runs once the body is parsed, before validation and handlers, and throws when the body is not the signed one.
   */
  peer?: (request: FastifyRequest) => { keyId: string | undefined; checkBody: (body: unknown) => void } | undefined;
}

/** Scopes whose routes name models (the allow-list applies there only; `name` on admin routes is a key name). */
const MODEL_SCOPES: ReadonlySet<RouteScope> = new Set(["inference", "models:read", "models:write"]);

/**
 * The auth plugin: `onRequest` authenticates and checks the route's declared scope, `preValidation` holds a peer
 * call's body to its signature, `preHandler`
 * enforces the key's model allow-list and (inference routes) its rate limits, `onResponse` writes audit
 * entries for routes declaring `config.audit`. Register it on the root instance before any route; its
 * hooks apply to the whole app (it skips fastify's encapsulation like `fastify-plugin`).
 */
export function authPlugin(security: SecurityService, opts: AuthPluginOptions = {}): FastifyPluginAsync {
  const publicUrls = new Set(opts.publicUrls ?? ["/healthz", "/readyz"]);
  const hint = opts.createKeyHint ?? "llmos keys create";
  const maxKeepAliveMs = opts.maxKeepAliveMs ?? 30 * 60_000;

  const plugin: FastifyPluginAsync = async (app: FastifyInstance) => {
    app.decorateRequest("llmosAuth", null);
    /** Verified peer calls whose body is still to be held to their signature. */
    const peerBodies = new WeakMap<FastifyRequest, (body: unknown) => void>();

    app.addHook("onRequest", async (request, reply) => {
      const remoteAddress = peerAddress(request);
      const local = isLoopbackAddress(remoteAddress) && !isProxied(request);
      const auth: LlmosAuth = { key: null, local, via: "public", remoteAddress };
      if (request.is404) return; // no route: the not-found handler answers 404 and runs nothing else
      const scope = routeScopeOf(request, publicUrls);
      if (scope === undefined) {
        throw new LlmosError(
          "forbidden",
          `route ${request.method} ${request.routeOptions.url ?? ""} declares no access scope; refused`,
        );
      }
      if (scope === "public") {
        request.llmosAuth = auth;
        return;
      }

      const peer = opts.peer?.(request);
      if (peer) {
        if (scope !== "inference" && scope !== "peer")
          throw new LlmosError("forbidden", "peers forward inference requests only");
        let key: KeyRecord | null = null;
        if (peer.keyId !== undefined) {
          key = await security.keys.get(peer.keyId).catch(() => null);
          // Revoked or expired since the forwarding node checked it: refused here too.
          if (!key || key.revokedAt !== null || (key.expiresAt !== null && Date.parse(key.expiresAt) <= Date.now()))
            throw new LlmosError("unauthorized", "invalid API key");
        }
        request.llmosAuth = { ...auth, key, via: "peer" };
        peerBodies.set(request, peer.checkBody);
        return;
      }

      const credential = presentedCredential(request);
      // Node-to-node routes (model copies between peers) take signed peer calls only, whoever else asks.
      if (scope === "peer") {
        if (credential) throw new LlmosError("forbidden", "this route takes signed node-to-node calls only");
        reply.header("www-authenticate", 'Bearer realm="llmos"');
        throw new LlmosError("unauthorized", "this route takes signed node-to-node calls only");
      }
      if (credential && "value" in credential && local && security.isLocalAdmin(credential.value, remoteAddress)) {
        request.llmosAuth = { ...auth, via: "admin-token" };
        return;
      }

      // While no key exists, local clients that always send some placeholder key (the openai and ollama clients
      // do) are served as if they sent none. A credential in llmos' own key format is still checked, so a revoked
      // key never works, even after the last active key is gone.
      const authOn = await security.checkAuthEnabled();
      const ownFormat = credential !== undefined && "value" in credential && credential.value.startsWith(KEY_PREFIX);
      if (credential && (authOn || !local || ownFormat)) {
        let key: KeyRecord;
        try {
          if ("malformed" in credential) throw new LlmosError("unauthorized", credential.malformed);
          key = await security.authenticate(credential.value);
        } catch (error) {
          // Only failures count and only failures are refused: a valid key always gets in, whatever its neighbours
          // sent (one address may be a proxy in front of many clients).
          const presented = "value" in credential ? credential.value : undefined;
          try {
            security.authFailures.assertAllowed(remoteAddress, presented);
          } catch (locked) {
            if (isLlmosError(locked) && typeof locked.details?.retryAfterSeconds === "number")
              setRetryAfter(reply, locked.details.retryAfterSeconds);
            throw locked;
          }
          security.authFailures.recordFailure(remoteAddress, presented);
          throw error;
        }
        request.llmosAuth = { ...auth, key, via: "key" };
        if (!hasScope(key.scopes, scope)) {
          throw new LlmosError("forbidden", `API key ${key.id} lacks the "${scope}" scope this route requires`, {
            requiredScope: scope,
          });
        }
        return;
      }

      if (authOn || (local && scope === "admin")) {
        reply.header("www-authenticate", 'Bearer realm="llmos"');
        throw new LlmosError(
          "unauthorized",
          authOn
            ? "missing API key: send `Authorization: Bearer <key>` or `x-api-key: <key>`"
            : "this route needs the admin scope, even from this machine: send the admin token " +
                "(`$LLMOS_HOME/admin.token`, which the llmos CLI reads) or an admin API key",
        );
      }
      if (local) {
        request.llmosAuth = { ...auth, via: "no-auth-local" };
        return;
      }
      throw new LlmosError(
        "forbidden",
        `no API key exists yet, so llmos only answers requests from this machine (you are ${remoteAddress || "remote"}). ` +
          `Create a key on the host with \`${hint}\`, then send it as \`Authorization: Bearer <key>\`.`,
      );
    });

    // The body of a peer call, once read, must be the one its signature covers (before any hook or handler uses it).
    app.addHook("preValidation", async (request) => {
      peerBodies.get(request)?.(request.body);
    });

    app.addHook("preHandler", async (request, reply) => {
      const key = request.llmosAuth?.key;
      if (!key) return;
      const scope = routeScopeOf(request, publicUrls);
      if (scope === undefined || !MODEL_SCOPES.has(scope)) return;
      if (key.models !== null) {
        for (const model of modelsOfRequest(request)) {
          if (!security.keyAllowsModel(key, model)) {
            throw new LlmosError("forbidden", `API key ${key.id} may not use model ${JSON.stringify(model)}`, {
              model,
            });
          }
        }
      }
      if (!hasScope(key.scopes, "models:write")) applyKeepAlivePolicy(request.body, maxKeepAliveMs);
      // A forwarded request was admitted by the node that received it.
      if (request.llmosAuth?.via === "peer") return;
      if (scope === "inference" && (key.rpm !== null || key.tpm !== null || key.tokensPerDay !== null)) {
        await admitInference(security, key, request, reply);
      }
    });

    app.addHook("onResponse", async (request, reply) => {
      const action = request.routeOptions?.config?.audit;
      if (!action || request.is404) return;
      // Anonymous 401s are not audited one by one: the failure limiter writes one entry per burst.
      if (reply.statusCode === 401 && !request.llmosAuth?.key) return;
      const result: AuditResult =
        reply.statusCode < 400 ? "ok" : [401, 403, 429].includes(reply.statusCode) ? "denied" : "error";
      const models = modelsOfRequest(request);
      security.audit.record({
        action,
        result,
        keyId: request.llmosAuth?.key?.id ?? null,
        target: models.length > 0 ? models.join(",") : null,
        remoteAddress: request.llmosAuth?.remoteAddress ?? peerAddress(request),
        details: {
          method: request.method,
          route: request.routeOptions.url ?? null,
          status: reply.statusCode,
          via: request.llmosAuth?.via ?? null,
        },
      });
    });
  };
  // Same effect as wrapping in fastify-plugin: hooks and the decorator land on the parent (root) instance.
  (plugin as unknown as Record<symbol, unknown>)[Symbol.for("skip-override")] = true;
  (plugin as unknown as Record<symbol, unknown>)[Symbol.for("fastify.display-name")] = "llmos-auth";
  return plugin;
}

async function admitInference(
  security: SecurityService,
  key: KeyRecord,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  try {
    setRateLimitHeaders(reply, await security.admit(key, estimateRequestTokens(request.body)));
  } catch (error) {
    setRateLimitHeaders(reply, security.rateLimitStatus(key));
    if (isLlmosError(error) && typeof error.details?.retryAfterSeconds === "number")
      setRetryAfter(reply, error.details.retryAfterSeconds);
    throw error;
  }
}

/** The scope a route declares (`public` for the configured health URLs), undefined when none. */
export function routeScopeOf(
  request: FastifyRequest,
  publicUrls: ReadonlySet<string> = new Set(["/healthz", "/readyz"]),
): RouteScope | undefined {
  const declared = request.routeOptions?.config?.scope;
  if (declared !== undefined) return declared;
  const url = request.routeOptions?.url;
  return url !== undefined && publicUrls.has(url) ? "public" : undefined;
}
