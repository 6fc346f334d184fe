import { existsSync } from "node:fs";
import path from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyPluginAsync, FastifyReply } from "fastify";
import "../auth/route-scope.js";

/**
 * The dashboard's Content-Security-Policy: scripts, styles and connections only from the daemon itself, no inline
 * script, no other origin, no framing. Data is fetched with the key in a header, so nothing else is needed.
 */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

function secureHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header("content-security-policy", UI_CSP)
    .header("referrer-policy", "no-referrer")
    .header("x-frame-options", "DENY")
    .header("cross-origin-opener-policy", "same-origin")
    .header("cross-origin-resource-policy", "same-origin");
}

/**
 * The web dashboard at `/ui` (the static files `packages/ui` builds with Vite). The files are public, like any
 * page; every figure on it comes from the API with the API key the page asks for. `dir` null or missing: the
 * dashboard was not built, and `/ui` says how to build it.
 */
export function uiRoutes(
  dir: string | null,
  opts: { authRequired: (local: boolean) => Promise<boolean> },
): FastifyPluginAsync {
  return async (app) => {
    const built = dir !== null && existsSync(path.join(dir, "index.html"));
    if (built) await app.register(fastifyStatic, { root: dir, serve: false, index: false });
    const config = { scope: "public" as const };
    const schema = { hide: true };

    app.get("/ui", { config, schema }, async (_request, reply) => reply.redirect("/ui/", 302));
    // Whether this caller needs a key, so the page asks for one before its first call instead of after a 401.
    app.get("/ui/auth.json", { config, schema }, async (request, reply) => {
      reply.header("cache-control", "no-store");
      return { authRequired: await opts.authRequired(request.llmosAuth?.local === true) };
    });
    app.get<{ Params: { "*": string } }>("/ui/*", { config, schema }, async (request, reply) => {
      secureHeaders(reply);
      if (!built) {
        return reply
          .code(503)
          .type("text/plain; charset=utf-8")
          .send("The dashboard is not built: run `npm run build` in the llmos repository.\n");
      }
      const file = request.params["*"];
      // Asset names carry a content hash: cache them for good. Pages of the app all answer with index.html.
      if (file.startsWith("assets/") && /^[\w./-]+$/.test(file) && !file.includes("..")) {
        reply.header("cache-control", "public, max-age=31536000, immutable");
        return reply.sendFile(file);
      }
      if (/\.(png|svg|ico)$/.test(file) && /^[\w.-]+$/.test(file)) return reply.sendFile(file);
      reply.header("cache-control", "no-cache");
      return reply.type("text/html; charset=utf-8").sendFile("index.html");
    });
  };
}
