import type { FastifyRequest } from "fastify";
import { looksLikePath } from "@llmos/protocol";
import { blobReference, defaultNameFor, parseModelfile, parsePullReference } from "../../store/index.js";

const BODY_FIELDS = ["model", "name", "from", "source", "destination", "base"] as const;
const PARAM_FIELDS = ["name", "model"] as const;

/** A FROM value that names a model (not a file path, which the import policy governs, nor an uploaded blob). */
function namesModel(value: string): boolean {
  return blobReference(value) === undefined && !looksLikePath(value);
}

/** The base model a Modelfile's FROM names, if it parses and names a model. */
function modelfileBase(text: unknown): string | undefined {
  if (typeof text !== "string") return undefined;
  try {
    const from = parseModelfile(text).from;
    return from !== undefined && namesModel(from) ? from : undefined;
  } catch {
    return undefined; // the route answers the syntax error
  }
}

/** The name a native pull registers when the body gives none (its reference's default name). */
function pullName(body: Record<string, unknown>): string | undefined {
  if (typeof body.reference !== "string" || body.name !== undefined) return undefined;
  try {
    return defaultNameFor(parsePullReference(body.reference));
  } catch {
    return undefined;
  }
}

/**
 * The model names a request refers to or implies, for the per-key allow-list: body fields `model`, `name`,
 * `from` (unless a path or blob), `source`, `destination`, `base` (an eval's), the FROM of a `modelfile`, the name
 * a pull without `name` registers, and route params `:name` / `:model` (de-duplicated, non-empty strings).
 */
export function modelsOfRequest(request: FastifyRequest): string[] {
  const out: string[] = [];
  const add = (v: unknown) => {
    if (typeof v === "string" && v.trim() !== "" && !out.includes(v.trim())) out.push(v.trim());
  };
  const body = request.body;
  if (body && typeof body === "object" && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    for (const f of BODY_FIELDS) {
      const v = b[f];
      if (f === "from" && typeof v === "string" && !namesModel(v)) continue;
      add(v);
    }
    add(modelfileBase(b.modelfile));
    add(pullName(b));
  }
  const params = request.params;
  if (params && typeof params === "object") {
    for (const f of PARAM_FIELDS) add((params as Record<string, unknown>)[f]);
  }
  return out;
}
