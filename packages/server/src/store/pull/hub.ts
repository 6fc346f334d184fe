import { LlmosError } from "../../errors.js";
import { hasTag, quantOfFile } from "./reference.js";
import type { UrlPolicy } from "./url-policy.js";

/** One entry of the Hub's tree listing (`GET /api/models/{repo}/tree/{revision}`). */
export interface HubTreeEntry {
  type: "file" | "directory";
  path: string;
  size: number;
  oid?: string;
  /** Present for files stored with Git LFS: `oid` is the sha256 of the content. */
  lfs?: { oid: string; size: number; pointerSize?: number };
}

/** How pull talks to a Hub. */
export interface HubClientOptions {
  /** Hub base URL, e.g. `https://huggingface.co`. */
  endpoint: string;
  /** Sent as `Authorization: Bearer` to the Hub's own origin only. */
  token?: string;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** The pull URL policy, for the listing's URL and each redirect. */
  checkUrl?: UrlPolicy;
}

/** Largest tree listing page read (a repo's listing is a few KiB to a few MiB). */
const MAX_LISTING_BYTES = 32 * 1024 * 1024;

/** Reads a response body as text, refusing more than `max` bytes. */
async function boundedText(response: Response, max: number, what: string): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of (response.body ?? []) as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > max) {
      await response.body?.cancel().catch(() => {});
      throw new LlmosError("upstream_error", `${what} is larger than ${max} bytes; refused`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Maps a Hub HTTP failure to a clear error. */
export function hubError(status: number, what: string, hasToken: boolean): LlmosError {
  if (status === 401 || status === 403) {
    return new LlmosError(
      "forbidden",
      `Hugging Face refused access to ${what} (HTTP ${status}): the repository is gated or private. ` +
        (hasToken
          ? "The token given (HF_TOKEN) has no access: accept the model's terms on huggingface.co with that account."
          : "Accept its terms on huggingface.co and set HF_TOKEN to a token of that account."),
      { upstreamStatus: status },
    );
  }
  if (status === 404) {
    return new LlmosError("not_found", `not found on Hugging Face: ${what}`, { upstreamStatus: status });
  }
  return new LlmosError("upstream_error", `Hugging Face answered HTTP ${status} for ${what}`, {
    upstreamStatus: status,
  });
}

/** `Authorization` header for `url` when it is on the Hub's origin (never for other hosts). */
export function hubAuthHeaders(
  url: string,
  options: Pick<HubClientOptions, "endpoint" | "token">,
): Record<string, string> {
  if (!options.token) return {};
  return new URL(url).origin === new URL(options.endpoint).origin ? { authorization: `Bearer ${options.token}` } : {};
}

/** Lists every file of a repo at a revision (recursive; follows `Link: rel="next"` pagination). */
export async function listRepoFiles(
  repo: string,
  revision: string,
  options: HubClientOptions,
): Promise<HubTreeEntry[]> {
  const doFetch = options.fetch ?? fetch;
  const base = options.endpoint.replace(/\/+$/, "");
  let url: string | undefined =
    `${base}/api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true&expand=false`;
  const out: HubTreeEntry[] = [];
  const what = `repository ${repo} (revision ${revision})`;
  for (let page = 0; url !== undefined && page < 1000; page++) {
    let response: Response;
    let current: string = url;
    await options.checkUrl?.(new URL(current), "request");
    try {
      for (let hop = 0; ; hop++) {
        response = await doFetch(current, {
          headers: { accept: "application/json", ...hubAuthHeaders(current, options) },
          signal: options.signal,
          redirect: "manual",
        });
        const location = response.headers.get("location");
        if (response.status < 300 || response.status >= 400 || !location || hop >= 5) break;
        await response.body?.cancel();
        const hopTo: URL = new URL(location, current);
        await options.checkUrl?.(hopTo, "redirect", new URL(current));
        current = hopTo.toString();
      }
    } catch (error) {
      if (options.signal?.aborted || error instanceof LlmosError) throw error;
      throw new LlmosError("upstream_error", `cannot reach ${base}: ${(error as Error).message}`, undefined, {
        cause: error,
      });
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw hubError(response.status, what, Boolean(options.token));
    }
    // Parse errors would quote the body: say only that it is not a listing.
    let body: unknown;
    try {
      body = JSON.parse(await boundedText(response, MAX_LISTING_BYTES, `the tree listing of ${what}`));
    } catch (error) {
      if (error instanceof LlmosError) throw error;
      body = undefined;
    }
    if (!Array.isArray(body)) throw new LlmosError("upstream_error", `unexpected tree listing for ${repo}`);
    for (const e of body as HubTreeEntry[]) {
      if (e && typeof e.path === "string" && (e.type === "file" || e.type === "directory")) out.push(e);
    }
    const next = /<([^>]+)>;\s*rel="next"/.exec(response.headers.get("link") ?? "")?.[1];
    const nextUrl: URL | undefined = next ? new URL(next, current) : undefined;
    // Pagination stays on the Hub: a `next` link elsewhere is not followed.
    url = nextUrl && nextUrl.origin === new URL(base).origin ? nextUrl.toString() : undefined;
  }
  return out;
}

/** Preference when no quantization is asked for: a good size/quality trade-off first. */
const PREFERRED_QUANTS = ["Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "Q5_K_S", "Q5_0", "Q6_K", "Q8_0", "F16", "BF16", "F32"];

function describe(files: HubTreeEntry[]): string {
  return files.map((f) => `${f.path} (${quantOfFile(f.path) ?? "?"}, ${f.lfs?.size ?? f.size} bytes)`).join(", ");
}

/**
 * Picks the GGUF file to pull from a repo listing: the one named by `quant` (a whole-word, case-insensitive match in
 * the file name, as Ollama does), else the only one, else the preferred quantization (Q4_K_M first), else the smallest.
 * Multimodal projector files (`mmproj`) and split-file parts are not candidates.
 * @throws LlmosError `not_found` listing what the repo has.
 */
export function pickGgufFile(repo: string, files: HubTreeEntry[], quant?: string): HubTreeEntry {
  const ggufs = files.filter((f) => f.type === "file" && /\.gguf$/i.test(f.path) && !/mmproj/i.test(f.path));
  const whole = ggufs.filter((f) => !/-\d{5}-of-\d{5}\.gguf$/i.test(f.path));
  if (ggufs.length === 0) throw new LlmosError("not_found", `repository ${repo} has no GGUF files`, { repo });
  if (whole.length === 0) {
    throw new LlmosError(
      "not_found",
      `repository ${repo} only has split GGUF files, which llmos cannot pull yet: ${describe(ggufs)}`,
    );
  }
  if (quant !== undefined) {
    const matches = whole.filter((f) => hasTag(f.path, quant));
    if (matches.length === 1) return matches[0]!;
    if (matches.length === 0) {
      throw new LlmosError(
        "not_found",
        `repository ${repo} has no GGUF file with quantization ${quant}; available: ${describe(whole)}`,
        { repo, available: whole.map((f) => f.path) },
      );
    }
    throw new LlmosError(
      "invalid_reference",
      `quantization ${quant} matches several files in ${repo}: ${describe(matches)}; name the file: hf.co/${repo}/{path}`,
      { repo, available: matches.map((f) => f.path) },
    );
  }
  if (whole.length === 1) return whole[0]!;
  for (const q of PREFERRED_QUANTS) {
    const matches = whole.filter((f) => quantOfFile(f.path) === q);
    if (matches.length > 0) return smallest(matches);
  }
  return smallest(whole);
}

function smallest(files: HubTreeEntry[]): HubTreeEntry {
  return [...files].sort(
    (a, b) => (a.lfs?.size ?? a.size) - (b.lfs?.size ?? b.size) || a.path.localeCompare(b.path),
  )[0]!;
}
