/**
 * Prompt-prefix affinity, as the Gateway API inference extension's approximate prefix scorer does it: the leading
 * text of a prompt is cut into fixed blocks, each block hashed together with the hash before it (a chain, so a hash
 * stands for the whole prefix up to its block), and each node publishes the hashes of the prompts it served
 * recently. The node whose set holds the longest run of a new prompt's chain most likely still has that prefix in
 * its KV cache. The receiving node needs only the request body; no tokenizer, no model.
 */
import { createHash } from "node:crypto";

/** Characters per block (about 32 tokens of English). */
export const PREFIX_BLOCK_CHARS = 128;
/** Blocks hashed at most (the first 8 KiB of a prompt decide). */
export const PREFIX_MAX_BLOCKS = 64;

/**
 * The text a request's prompt is made of, from its body in any API's shape: chat `messages` (role and text of each,
 * in order; parts of multi-part contents joined), a completion `prompt`, Ollama's `system` + `prompt`, embeddings'
 * `input`. Empty when the body has none.
 */
export function promptTextOf(body: unknown): string {
  if (typeof body !== "object" || body === null) return "";
  const b = body as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof b.system === "string") parts.push(`system\n${b.system}`);
  if (Array.isArray(b.messages)) {
    for (const m of b.messages as unknown[]) {
      if (typeof m !== "object" || m === null) continue;
      const { role, content } = m as { role?: unknown; content?: unknown };
      parts.push(`${typeof role === "string" ? role : ""}\n${contentText(content)}`);
    }
  }
  if (typeof b.prompt === "string") parts.push(b.prompt);
  else if (Array.isArray(b.prompt) && typeof b.prompt[0] === "string") parts.push(b.prompt[0]);
  if (typeof b.input === "string") parts.push(b.input);
  else if (Array.isArray(b.input) && typeof b.input[0] === "string") parts.push(b.input[0]);
  return parts.join("\n\n");
}

function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((p) =>
      typeof p === "object" && p !== null && typeof (p as { text?: unknown }).text === "string"
        ? (p as { text: string }).text
        : "",
    )
    .join("");
}

/**
 * The hash chain of `text`'s leading full blocks: `h[i] = sha256(h[i-1] || block[i])`, 12 hex digits each (48
 * bits: a false match needs a collision within one model's few thousand published hashes). A last partial block is
 * left out, so a conversation's next turn shares every hash of the turn before.
 */
export function prefixChain(text: string, blockChars = PREFIX_BLOCK_CHARS, maxBlocks = PREFIX_MAX_BLOCKS): string[] {
  const chain: string[] = [];
  let previous = "";
  for (let i = 0; i < maxBlocks && (i + 1) * blockChars <= text.length; i++) {
    previous = createHash("sha256")
      .update(previous)
      .update(text.slice(i * blockChars, (i + 1) * blockChars))
      .digest("hex")
      .slice(0, 12);
    chain.push(previous);
  }
  return chain;
}

/** How many leading hashes of `chain` are in `held` (counting stops at the first one missing). */
export function matchedBlocks(chain: readonly string[], held: ReadonlySet<string> | undefined): number {
  if (!held) return 0;
  let n = 0;
  while (n < chain.length && held.has(chain[n]!)) n++;
  return n;
}

/**
 * The chains of prompts this node served recently, per model, bounded: the most recently used hashes are kept
 * (`perModel` per model, `total` over all), so the set published in heartbeats stays small and tracks what the
 * runners' caches most likely still hold.
 */
export class PrefixIndex {
  private readonly models = new Map<string, Map<string, number>>();
  private tick = 0;

  constructor(
    private readonly perModel = 512,
    private readonly total = 4096,
  ) {}

  /** Notes that `model` ran a prompt with `chain`. */
  record(model: string, chain: readonly string[]): void {
    if (chain.length === 0) return;
    let hashes = this.models.get(model);
    if (!hashes) this.models.set(model, (hashes = new Map()));
    for (const h of chain) {
      hashes.delete(h);
      hashes.set(h, ++this.tick);
    }
    while (hashes.size > this.perModel) hashes.delete(hashes.keys().next().value!);
    this.trimTotal();
  }

  /** Forgets a model (it was unloaded: its cache is gone). */
  forget(model: string): void {
    this.models.delete(model);
  }

  /** Hashes per model, oldest first (what a heartbeat publishes). */
  summary(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [model, hashes] of this.models) out[model] = [...hashes.keys()];
    return out;
  }

  private trimTotal(): void {
    let size = 0;
    for (const hashes of this.models.values()) size += hashes.size;
    while (size > this.total) {
      // Drop the globally oldest hash.
      let oldest: { model: string; hash: string; at: number } | undefined;
      for (const [model, hashes] of this.models) {
        const first = hashes.entries().next().value;
        if (first && (!oldest || first[1] < oldest.at)) oldest = { model, hash: first[0], at: first[1] };
      }
      if (!oldest) return;
      this.models.get(oldest.model)!.delete(oldest.hash);
      size--;
    }
  }
}
