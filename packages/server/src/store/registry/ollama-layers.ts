import { LlmosError } from "../../errors.js";
import type { DefinitionMessage, ModelDefinition } from "../definition.js";
import { PARAMETER_SPECS, validateParameters } from "../modelfile/parameters.js";
import type { OciDescriptor } from "./oci-manifest.js";

/** What a layer is to llmos. */
export type LayerRole = "model" | "adapter" | "projector" | "template" | "system" | "params" | "messages" | "license";

/** Ollama's layer media types (server/images.go), the ones llmos writes on push. */
export const OLLAMA_MEDIA_TYPES: Readonly<Record<LayerRole, string>> = {
  model: "application/vnd.ollama.image.model",
  adapter: "application/vnd.ollama.image.adapter",
  projector: "application/vnd.ollama.image.projector",
  template: "application/vnd.ollama.image.template",
  system: "application/vnd.ollama.image.system",
  params: "application/vnd.ollama.image.params",
  messages: "application/vnd.ollama.image.messages",
  license: "application/vnd.ollama.image.license",
};

/** Media types read as well: Ollama's older prompt-template layer, Docker's model artifacts (GGUF, license). */
const ALSO_READ: Readonly<Record<string, LayerRole>> = {
  "application/vnd.ollama.image.prompt": "template",
  "application/vnd.docker.ai.gguf.v3": "model",
  "application/vnd.docker.ai.license": "license",
};

const ROLE_OF: ReadonlyMap<string, LayerRole> = new Map([
  ...Object.entries(OLLAMA_MEDIA_TYPES).map(([role, type]) => [type, role as LayerRole] as const),
  ...Object.entries(ALSO_READ),
]);

/** The role of a layer media type; undefined for types llmos does not know. */
export function layerRole(mediaType: string): LayerRole | undefined {
  return ROLE_OF.get(mediaType);
}

/** Text layers (template, system, parameters, messages, license) are read into memory up to this size each. */
export const MAX_TEXT_LAYER_BYTES = 1 << 20;

/** A manifest's layers sorted by what llmos does with them. */
export interface LayerPlan {
  model: OciDescriptor;
  adapters: OciDescriptor[];
  /** Multimodal projectors: stored with the model, not used yet. */
  projectors: OciDescriptor[];
  /** Small layers that become the definition, in manifest order. */
  texts: Array<{ role: LayerRole; layer: OciDescriptor }>;
  /** Layers of media types llmos does not know: skipped with a warning. */
  unknown: OciDescriptor[];
}

/**
 * Sorts a manifest's layers. A model needs exactly one weights layer (split weights are not supported).
 * @throws `upstream_error` (no weights layer; several), naming what was pulled.
 */
export function planLayers(layers: readonly OciDescriptor[], what: string): LayerPlan {
  const models: OciDescriptor[] = [];
  const plan: Omit<LayerPlan, "model"> = { adapters: [], projectors: [], texts: [], unknown: [] };
  for (const layer of layers) {
    const role = layerRole(layer.mediaType);
    if (role === "model") models.push(layer);
    else if (role === "adapter") plan.adapters.push(layer);
    else if (role === "projector") plan.projectors.push(layer);
    else if (role !== undefined) plan.texts.push({ role, layer });
    else plan.unknown.push(layer);
  }
  if (models.length === 0) {
    throw new LlmosError(
      "upstream_error",
      `${what} has no model weights layer (${OLLAMA_MEDIA_TYPES.model}); its layers: ` +
        (layers.map((l) => l.mediaType).join(", ") || "none"),
    );
  }
  if (models.length > 1) {
    throw new LlmosError(
      "upstream_error",
      `${what} has ${models.length} weights layers; llmos pulls single-file models`,
    );
  }
  return { model: models[0]!, ...plan };
}

function json(text: string, role: LayerRole, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new LlmosError("upstream_error", `${what}: the ${role} layer is not JSON`);
  }
}

/**
 * Builds the model definition from the text layers, as Ollama applies them: `template` -> TEMPLATE, `system` ->
 * SYSTEM, `params` (a JSON object) -> PARAMETER values, `messages` (a JSON list) -> MESSAGE lines, `license` ->
 * LICENSE (several joined by a blank line). Parameters llmos does not know are skipped, with a warning.
 */
export function definitionFromLayers(
  texts: ReadonlyArray<{ role: LayerRole; text: string }>,
  from: string,
  what: string,
  warn: (message: string) => void,
): ModelDefinition {
  const definition: ModelDefinition = { from, parameters: {}, messages: [] };
  const licenses: string[] = [];
  for (const { role, text } of texts) {
    if (role === "template") definition.template = text;
    else if (role === "system") definition.system = text;
    else if (role === "license") licenses.push(text);
    else if (role === "params") {
      const params = json(text, role, what);
      if (typeof params !== "object" || params === null || Array.isArray(params)) {
        throw new LlmosError("upstream_error", `${what}: the params layer is not a JSON object`);
      }
      const known: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(params)) {
        if (PARAMETER_SPECS[key]) known[key] = value;
        else warn(`${what}: parameter "${key}" is not known to llmos; skipped`);
      }
      try {
        Object.assign(definition.parameters, validateParameters(known, "params layer: "));
      } catch (error) {
        throw new LlmosError("upstream_error", `${what}: ${(error as Error).message}`);
      }
    } else if (role === "messages") {
      const messages = json(text, role, what);
      const ok =
        Array.isArray(messages) &&
        messages.every(
          (m: DefinitionMessage) => typeof m?.role === "string" && typeof m.content === "string" && m.role.length <= 32,
        );
      if (!ok) throw new LlmosError("upstream_error", `${what}: the messages layer is not a list of {role, content}`);
      definition.messages = (messages as DefinitionMessage[]).map((m) => ({ role: m.role, content: m.content }));
    }
  }
  if (licenses.length > 0) definition.license = licenses.join("\n\n");
  return definition;
}

/** The text layers a definition pushes, in Ollama's order; empty parts are left out. */
export function textLayersOf(definition: ModelDefinition): Array<{ role: LayerRole; bytes: Buffer }> {
  const out: Array<{ role: LayerRole; bytes: Buffer }> = [];
  if (definition.template !== undefined) out.push({ role: "template", bytes: Buffer.from(definition.template) });
  if (definition.system !== undefined) out.push({ role: "system", bytes: Buffer.from(definition.system) });
  if (Object.keys(definition.parameters).length > 0) {
    out.push({ role: "params", bytes: Buffer.from(JSON.stringify(definition.parameters)) });
  }
  if (definition.messages.length > 0)
    out.push({ role: "messages", bytes: Buffer.from(JSON.stringify(definition.messages)) });
  if (definition.license !== undefined) out.push({ role: "license", bytes: Buffer.from(definition.license) });
  return out;
}
