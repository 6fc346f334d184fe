import { LlmosError } from "../../errors.js";
import { defaultOciName, OLLAMA_REGISTRY, parseOciReference, type OciReference } from "../registry/oci-reference.js";

/** A pull reference, parsed. */
export type PullReference =
  | {
      kind: "hub";
      /** `owner/repo` as written (case kept: the Hub's repo ids are case-sensitive in URLs). */
      repo: string;
      /** Path of a file inside the repo, when the reference names one. */
      file?: string;
      /** Quantization tag to pick (`Q4_K_M`), when given as `:tag`. */
      quant?: string;
    }
  | { kind: "url"; url: string }
  /** A model in an OCI registry: `llama3.2:1b` (Ollama's library), `host/ns/name:tag`, `oci://...`. */
  | { kind: "oci"; oci: OciReference };

const HUB_PREFIXES = ["hf.co/", "huggingface.co/", "hf://", "https://hf.co/", "https://huggingface.co/"];

function invalid(ref: string, why: string): LlmosError {
  return new LlmosError(
    "invalid_reference",
    `invalid pull reference ${JSON.stringify(ref)}: ${why}; expected hf.co/{owner}/{repo}[:{quant}], ` +
      "hf.co/{owner}/{repo}/{path/to/file.gguf}, hf://..., huggingface.co/..., or an http(s) URL of a .gguf file",
    { reference: ref },
  );
}

const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Parses what `pull` accepts: `hf.co/{owner}/{repo}[:{quant}]`, `hf.co/{owner}/{repo}/{path/to/file.gguf}`,
 * the same with `hf://` or `huggingface.co/`, plain `https://` (or `http://`) URLs of a file, and anything else as
 * a registry reference (`llama3.2:1b`, `registry.ollama.ai/library/llama3.2:1b`, `oci://ghcr.io/org/m:tag`,
 * `ollama://...`; see `parseOciReference`).
 * A `https://huggingface.co/{owner}/{repo}/resolve/{rev}/{path}` URL is treated as a plain URL.
 * @throws LlmosError `invalid_reference`.
 */
export function parsePullReference(input: string): PullReference {
  const ref = typeof input === "string" ? input.trim() : "";
  if (ref.length === 0) throw invalid(String(input), "it is empty");
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\s\\]/.test(ref))
    throw invalid(ref, "it contains white space, control characters or backslashes");
  const prefix = HUB_PREFIXES.find((p) => ref.toLowerCase().startsWith(p));
  if (prefix === undefined || /\/resolve\//.test(ref)) {
    if (/^https?:\/\//i.test(ref)) {
      let url: URL;
      try {
        url = new URL(ref);
      } catch {
        throw invalid(ref, "it is not a valid URL");
      }
      // fetch refuses such URLs, and a secret in a model reference would be logged and stored with the model.
      if (url.username || url.password)
        throw invalid(
          ref.replace(/\/\/[^/]*@/, "//***@"),
          "it holds credentials (user:password@); they are not supported",
        );
      return { kind: "url", url: url.toString() };
    }
    return { kind: "oci", oci: parseOciReference(ref) };
  }
  let rest = ref.slice(prefix.length);
  let quant: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon !== -1) {
    quant = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(quant)) throw invalid(ref, `quantization tag "${quant}" is not valid`);
  }
  const parts = rest.split("/");
  if (parts.length < 2 || !parts[0] || !parts[1]) throw invalid(ref, "it needs {owner}/{repo}");
  const [owner, repo, ...fileParts] = parts as [string, string, ...string[]];
  if (!REPO_PART.test(owner) || !REPO_PART.test(repo))
    throw invalid(ref, "owner and repo may hold letters, digits, `.`, `_` and `-`");
  if (fileParts.some((p) => p === "" || p === "." || p === ".."))
    throw invalid(ref, "the file path has empty, `.` or `..` parts");
  const out: PullReference = { kind: "hub", repo: `${owner}/${repo}` };
  if (fileParts.length > 0) {
    if (quant !== undefined) throw invalid(ref, "give either a file path or a :quant tag, not both");
    out.file = fileParts.join("/");
  }
  if (quant !== undefined) out.quant = quant;
  return out;
}

/** Turns text into a valid lower-case name segment (`[a-z0-9][a-z0-9._-]*`). */
function segment(text: string): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, 100);
  return s.replace(/\.json$/, "-json") || "model";
}

/** Turns text into a valid tag. */
function tagOf(text: string): string {
  const t = text
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/^[^A-Za-z0-9_]+/, "")
    .slice(0, 128);
  return t || "latest";
}

/** Quantization tags recognised in file names, longest first so `Q4_K_M` wins over `Q4_K`. */
export const KNOWN_QUANTS = [
  "IQ1_S",
  "IQ1_M",
  "IQ2_XXS",
  "IQ2_XS",
  "IQ2_S",
  "IQ2_M",
  "IQ3_XXS",
  "IQ3_XS",
  "IQ3_S",
  "IQ3_M",
  "IQ4_XS",
  "IQ4_NL",
  "Q2_K_S",
  "Q2_K",
  "Q3_K_S",
  "Q3_K_M",
  "Q3_K_L",
  "Q4_K_S",
  "Q4_K_M",
  "Q4_0",
  "Q4_1",
  "Q5_K_S",
  "Q5_K_M",
  "Q5_0",
  "Q5_1",
  "Q6_K",
  "Q8_0",
  "F16",
  "BF16",
  "F32",
].sort((a, b) => b.length - a.length);

/** The quantization tag in a file name (`model.Q4_K_M.gguf` -> `Q4_K_M`), if any. */
export function quantOfFile(file: string): string | undefined {
  const base = file.split("/").pop() ?? file;
  for (const q of KNOWN_QUANTS) if (hasTag(base, q)) return q;
  return undefined;
}

/** True when `tag` appears in `file`'s name as a whole token, case-insensitively. */
export function hasTag(file: string, tag: string): boolean {
  const base = (file.split("/").pop() ?? file).replace(/\.gguf$/i, "");
  const escaped = tag.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^A-Za-z0-9])${escaped}([^A-Za-z0-9]|$)`, "i").test(base);
}

/**
 * The model name a pull registers when the caller gives none: `hf.co/{owner}/{repo}:{quant|latest}` (lower-cased,
 * as store names are lower-case) for Hub references, `{file name}:latest` for URLs, `defaultOciName` for registry
 * references (`defaultRegistry` is the host names without one pull from).
 */
export function defaultNameFor(ref: PullReference, pickedFile?: string, defaultRegistry = OLLAMA_REGISTRY): string {
  if (ref.kind === "oci") return defaultOciName(ref.oci, defaultRegistry);
  if (ref.kind === "hub") {
    const [owner, repo] = ref.repo.split("/") as [string, string];
    const quant = ref.quant ?? (pickedFile ? quantOfFile(pickedFile) : undefined);
    return `hf.co/${segment(owner)}/${segment(repo)}:${tagOf(quant ?? "latest")}`;
  }
  const file = decodeURIComponent(new URL(ref.url).pathname.split("/").pop() ?? "model").replace(/\.gguf$/i, "");
  return `${segment(file)}:latest`;
}
