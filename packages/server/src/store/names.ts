import { LlmosError } from "../errors.js";

/** A parsed model name: `name` (lower-case, optional `/`-separated namespace) and `tag`. */
export interface ModelName {
  /** e.g. `stories` or `library/stories` or `hf.co/owner/repo`. */
  name: string;
  /** e.g. `latest` or `Q4_K_M`. */
  tag: string;
}

/** The tag a name gets when none is given. */
export const DEFAULT_TAG = "latest";

/** Longest name part (all segments and slashes), in characters. */
export const MAX_NAME_LENGTH = 200;
/** Longest single segment of a name. */
export const MAX_SEGMENT_LENGTH = 100;
/** Most `/`-separated segments in a name. */
export const MAX_SEGMENTS = 4;

const SEGMENT = /^[a-z0-9][a-z0-9._-]*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** What a valid name looks like, for error messages. */
export const NAME_RULES =
  "a valid model name is `name` or `name:tag`: name = 1-4 segments separated by `/`, each starting with a " +
  "letter or digit followed by letters, digits, `.`, `_` or `-` (case-insensitive; at most " +
  `${MAX_SEGMENT_LENGTH} characters per segment, ${MAX_NAME_LENGTH} in all, no segment ending in \`.json\`); ` +
  "tag = 1-128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-` (default `latest`); " +
  "e.g. `stories`, `stories:latest`, `me/llama:Q4_K_M`";

function invalid(input: string, why: string): LlmosError {
  return new LlmosError("invalid_model_name", `invalid model name ${JSON.stringify(input)}: ${why}; ${NAME_RULES}`, {
    name: input,
  });
}

/**
 * Parses and validates `name[:tag]`.
 *
 * The name part is case-insensitive and folded to lower case (`Stories` is `stories`): names become folder names,
 * case-insensitive file systems would otherwise merge `Llama` and `llama`, and Ollama clients use names such as
 * `hf.co/Owner/Repo:Q4_K_M` verbatim after pulling. Tags keep their case because quantization tags such as
 * `Q4_K_M` are conventionally upper-case.
 * Anything that could escape the store folder (`..`, absolute paths, backslashes, control characters) is rejected.
 *
 * @throws LlmosError `invalid_model_name` with a message that says what a valid name looks like.
 */
export function parseModelName(input: string): ModelName {
  if (typeof input !== "string" || input.length === 0) throw invalid(String(input), "it is empty");
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(input)) throw invalid(input, "it contains control characters");
  if (input.includes("\\")) throw invalid(input, "it contains a backslash");
  if (/\s/.test(input)) throw invalid(input, "it contains white space");
  const colon = input.indexOf(":");
  const name = (colon === -1 ? input : input.slice(0, colon)).toLowerCase();
  const tag = colon === -1 ? DEFAULT_TAG : input.slice(colon + 1);
  if (name.length === 0) throw invalid(input, "the name part is empty");
  if (name.length > MAX_NAME_LENGTH) throw invalid(input, `the name part is longer than ${MAX_NAME_LENGTH} characters`);
  if (name.startsWith("/")) throw invalid(input, "it is an absolute path");
  const segments = name.split("/");
  if (segments.length > MAX_SEGMENTS) throw invalid(input, `it has more than ${MAX_SEGMENTS} segments`);
  for (const segment of segments) {
    if (segment === "") throw invalid(input, "it has an empty segment");
    if (segment === "." || segment === "..") throw invalid(input, "it contains a `.` or `..` segment");
    if (segment.length > MAX_SEGMENT_LENGTH) {
      throw invalid(input, `segment "${segment}" is longer than ${MAX_SEGMENT_LENGTH} characters`);
    }
    if (!SEGMENT.test(segment)) throw invalid(input, `segment "${segment}" has characters that are not allowed`);
    // Tags are stored as `<tag>.json` files next to sub-folders of nested names: keep the two apart.
    if (segment.endsWith(".json")) throw invalid(input, `segment "${segment}" ends in .json`);
  }
  if (tag.length === 0) throw invalid(input, "the tag after `:` is empty");
  if (!TAG.test(tag)) throw invalid(input, `tag "${tag}" is not valid`);
  return { name, tag };
}

/** `name:tag` of a parsed name. */
export function formatModelName(parsed: ModelName): string {
  return `${parsed.name}:${parsed.tag}`;
}

/** Parses and returns the canonical `name:tag` form, so that `stories` and `stories:latest` are the same key. */
export function canonicalModelName(input: string): string {
  return formatModelName(parseModelName(input));
}
