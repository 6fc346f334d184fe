import swagger from "@fastify/swagger";
import type { FastifyInstance, FastifyPluginAsync } from "fastify";
import type { HttpDeps } from "./deps.js";
import { OLLAMA_RESPONSE_DOCS } from "./ollama/responses.js";
import { UTILITY_RESPONSE_DOCS } from "./routes/utility.js";

/** Documented-only response schemas (`METHOD path`), for routes that do not declare `schema.response`. */
const RESPONSE_DOCS: Readonly<Record<string, unknown>> = { ...OLLAMA_RESPONSE_DOCS, ...UTILITY_RESPONSE_DOCS };

/** Headers of the reference page: no scripts, no external anything, not frameable. */
export const DOCS_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

/**
 * Registers the OpenAPI 3.1 generator on the root instance. Must run before any route is registered: the generator
 * collects each route's TypeBox schema as the route is added.
 */
export async function registerOpenApi(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "llmos",
        version: deps.version,
        description:
          "llmos HTTP API: the native API, an OpenAI-compatible API under /v1 and an Ollama-compatible API under /api.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "An llmos API key" } } },
      security: [{ bearer: [] }],
    },
    transform: ({ schema, url, route }) => {
      const method = Array.isArray(route.method) ? route.method[0] : route.method;
      const doc = RESPONSE_DOCS[`${String(method).toUpperCase()} ${url}`];
      if (!doc || !schema || (schema as { response?: unknown }).response) return { schema, url };
      return { schema: { ...schema, response: { 200: doc } } as typeof schema, url };
    },
  });
}

/**
 * `GET /openapi.json` and the reference page `GET /docs`. Both are public (scope "public"): they describe the API,
 * not any data, and clients discover the API before they hold a key.
 */
export const openapiRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    "/openapi.json",
    { schema: { summary: "This OpenAPI 3.1 document", tags: ["meta"] }, config: { scope: "public" } },
    async () => app.swagger(),
  );

  app.get(
    "/docs",
    { schema: { summary: "Human-readable API reference (HTML)", tags: ["meta"] }, config: { scope: "public" } },
    async (_request, reply) => {
      return reply
        .headers(DOCS_SECURITY_HEADERS)
        .type("text/html; charset=utf-8")
        .send(renderDocsPage(app.swagger() as unknown as OpenApiDocument));
    },
  );
};

interface OpenApiOperation {
  summary?: string;
  description?: string;
  tags?: string[];
  parameters?: Array<{ name: string; in: string; required?: boolean; schema?: unknown; description?: string }>;
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
}

interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string };
  paths?: Record<string, Record<string, OpenApiOperation>>;
}

const METHODS = ["get", "head", "post", "put", "patch", "delete", "options"];

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** A self-contained HTML reference of an OpenAPI document: operations grouped by tag, with their schemas. */
export function renderDocsPage(doc: OpenApiDocument): string {
  const byTag = new Map<string, Array<{ method: string; path: string; op: OpenApiOperation }>>();
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      for (const tag of op.tags?.length ? op.tags : ["other"]) {
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag)!.push({ method, path, op });
      }
    }
  }
  const tags = [...byTag.keys()].sort();
  const json = (v: unknown) => `<pre>${escapeHtml(JSON.stringify(v, null, 2))}</pre>`;
  const section = (tag: string) => {
    const ops = byTag.get(tag)!.sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
    return `<section id="tag-${escapeHtml(tag)}"><h2>${escapeHtml(tag)}</h2>${ops
      .map(({ method, path, op }) => {
        const params = op.parameters?.length
          ? `<h4>Parameters</h4><ul>${op.parameters.map((p) => `<li><code>${escapeHtml(p.name)}</code> (${escapeHtml(p.in)}${p.required ? ", required" : ""})${p.description ? ` — ${escapeHtml(p.description)}` : ""}</li>`).join("")}</ul>`
          : "";
        const body = op.requestBody?.content
          ? Object.entries(op.requestBody.content)
              .map(([type, c]) => `<h4>Request body <code>${escapeHtml(type)}</code></h4>${json(c.schema ?? {})}`)
              .join("")
          : "";
        const responses = Object.entries(op.responses ?? {})
          .map(
            ([status, r]) =>
              `<h4>Response ${escapeHtml(status)}</h4>${r.description ? `<p>${escapeHtml(r.description)}</p>` : ""}${Object.values(
                r.content ?? {},
              )
                .map((c) => (c.schema ? json(c.schema) : ""))
                .join("")}`,
          )
          .join("");
        return `<details class="op"><summary><span class="m m-${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code> ${escapeHtml(op.summary ?? "")}</summary>${op.description ? `<p>${escapeHtml(op.description)}</p>` : ""}${params}${body}${responses}</details>`;
      })
      .join("")}</section>`;
  };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(doc.info.title)} API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:1000px;padding:1rem 2rem;color:#1b1b1b}
h1{margin-bottom:0}nav a{margin-right:1rem}code,pre{font:13px ui-monospace,monospace}
pre{background:#f5f5f5;padding:.75rem;overflow:auto;border-radius:4px}
.op{border:1px solid #ddd;border-radius:4px;margin:.4rem 0;padding:.3rem .6rem}.op summary{cursor:pointer}
.m{display:inline-block;min-width:4.5em;font-weight:600}.m-get{color:#0a6}.m-post{color:#06c}.m-delete{color:#c22}.m-put,.m-patch{color:#a60}.m-head{color:#666}
</style></head><body>
<h1>${escapeHtml(doc.info.title)} ${escapeHtml(doc.info.version)}</h1>
<p>${escapeHtml(doc.info.description ?? "")} OpenAPI ${escapeHtml(doc.openapi)} document: <a href="/openapi.json">/openapi.json</a>.</p>
<nav>${tags.map((t) => `<a href="#tag-${escapeHtml(t)}">${escapeHtml(t)}</a>`).join("")}</nav>
${tags.map(section).join("\n")}
</body></html>`;
}
