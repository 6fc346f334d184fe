import { LlmosError } from "../../errors.js";

/** The registry a name without a host pulls from (Ollama's public library), unless `LLMOS_OCI_REGISTRY` says. */
export const OLLAMA_REGISTRY = "registry.ollama.ai";
/** The namespace a one-part name lives in on the default registry (`llama3.2` is `library/llama3.2`). */
export const DEFAULT_NAMESPACE = "library";
export const DEFAULT_OCI_TAG = "latest";

/** A model in an OCI registry, parsed. */
export interface OciReference {
  /** `host[:port]`, lower-case; undefined = the default registry (`LLMOS_OCI_REGISTRY`, else registry.ollama.ai). */
  registry?: string;
  /** `library/llama3.2`, `team/models/foo`: lower-case path components. */
  repository: string;
  /** `1b`; undefined when only a digest was given (then `latest` is not implied). */
  tag?: string;
  /** `sha256:<hex>` of the manifest, when given as `@sha256:...`. */
  digest?: string;
}

// The grammar of the distribution spec (distribution/reference): path components of lower-case letters and digits
// joined by `.`, `_`, `__` or dashes; tags of word characters, `.` and `-`.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const HOST = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** Longest repository path the distribution spec allows. */
const MAX_REPOSITORY = 255;

function invalid(ref: string, why: string): LlmosError {
  return new LlmosError(
    "invalid_reference",
    `invalid model reference ${JSON.stringify(ref)}: ${why}; expected a library name such as llama3.2:1b, ` +
      "{registry}/{namespace}/{name}:{tag}, or oci://{registry}/{repository}[:{tag}|@sha256:{digest}]",
    { reference: ref },
  );
}

/** True when the first `/`-separated part of a name is a registry host (Docker's rule: a dot, a port or localhost). */
function looksLikeHost(part: string): boolean {
  return part.includes(".") || part.includes(":") || part === "localhost";
}

/**
 * Parses a registry reference: `oci://{registry}/{repository}[:{tag}][@sha256:{digest}]` (registry required),
 * `ollama://...` (LocalAI's form) or a bare `[{registry}/]{repository}[:{tag}][@sha256:{digest}]`, where a first part
 * with a dot, a port or `localhost` is the registry and a one-part repository is in the `library` namespace.
 * @throws LlmosError `invalid_reference` saying what is wrong.
 */
export function parseOciReference(input: string): OciReference {
  const original = input;
  let ref = input.trim();
  let explicit = false;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(ref);
  if (scheme) {
    const name = scheme[1]!.toLowerCase();
    if (name !== "oci" && name !== "ollama") throw invalid(original, `unknown scheme ${name}://`);
    explicit = name === "oci";
    ref = ref.slice(scheme[0].length);
  }
  if (ref.length === 0) throw invalid(original, "it is empty");
  let digest: string | undefined;
  const at = ref.indexOf("@");
  if (at !== -1) {
    digest = ref.slice(at + 1).toLowerCase();
    ref = ref.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(original, "the digest after @ must be sha256:<64 hex digits>");
  }
  const parts = ref.split("/");
  let registry: string | undefined;
  if (parts.length > 1 && (explicit || looksLikeHost(parts[0]!))) {
    registry = parts.shift()!.toLowerCase();
    if (!HOST.test(registry)) throw invalid(original, `"${registry}" is not a registry host[:port]`);
  } else if (explicit) {
    throw invalid(original, "oci:// needs {registry}/{repository}");
  }
  let tag: string | undefined;
  const last = parts[parts.length - 1]!;
  const colon = last.lastIndexOf(":");
  if (colon !== -1) {
    tag = last.slice(colon + 1);
    parts[parts.length - 1] = last.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(original, `tag "${tag}" is not valid`);
  }
  const components = parts.map((p) => p.toLowerCase());
  for (const c of components) {
    if (!COMPONENT.test(c)) {
      throw invalid(
        original,
        c === "" ? "it has an empty path part" : `"${c}" is not a valid repository part (letters, digits, . _ -)`,
      );
    }
  }
  if (registry === undefined && components.length === 1) components.unshift(DEFAULT_NAMESPACE);
  const repository = components.join("/");
  if (repository.length > MAX_REPOSITORY) throw invalid(original, "the repository path is too long");
  const out: OciReference = { repository };
  if (registry !== undefined) out.registry = registry;
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  if (tag === undefined && digest === undefined) out.tag = DEFAULT_OCI_TAG;
  return out;
}

/** What the manifest request names: the digest when given (it pins the content), else the tag. */
export function manifestReference(ref: OciReference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_OCI_TAG;
}

/** `registry/repository:tag@digest`, for messages and `show`. */
export function formatOciReference(ref: OciReference, defaultRegistry: string): string {
  return (
    `${ref.registry ?? defaultRegistry}/${ref.repository}` +
    `${ref.tag !== undefined ? `:${ref.tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`
  );
}

/**
 * The model name a pull registers when none is given: `llama3.2:1b` for the default registry's library,
 * `{namespace}/{name}:{tag}` for its other namespaces, `{host}/{repository}:{tag}` elsewhere (a port becomes
 * `-port`; past the store's 4 name segments the host and the last 3 parts are kept). A digest-only reference gets
 * the tag `sha256-{first 12 hex digits}`. A reference that names the default registry is named as if it did not.
 */
export function defaultOciName(ref: OciReference, defaultRegistry: string): string {
  const tag = ref.tag ?? `sha256-${ref.digest!.slice(7, 19)}`;
  const repo = ref.repository.split("/");
  if (ref.registry === undefined || ref.registry === defaultRegistry) {
    const name = repo[0] === DEFAULT_NAMESPACE && repo.length === 2 ? repo[1]! : repo.slice(-4).join("/");
    return `${name}:${tag}`;
  }
  const host = ref.registry.replace(":", "-");
  return `${[host, ...repo.slice(-3)].join("/")}:${tag}`;
}
