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

/** A prompt a slot most likely still holds: its chain, and when it last ran. */
interface CachedPrompt {
  chain: readonly string[];
  at: number;
}

/**
 * The prefixes this node's runners most likely hold in their KV cache, per model: what a heartbeat publishes for
 * affinity. It follows the engine's slot choice (engine/prompt-cache/choose-slot.ts) rather than a plain "recently
 * served" set, because a prefix the runner no longer holds attracts its conversation to a node that must evaluate
 * the whole prompt again: a model keeps one prompt per slot; a prompt that continues one (its chain starts with that
 * prompt's whole chain: the conversation's next turn) replaces it on its slot; any other prompt takes a slot of its
 * own, and when there are more prompts than slots the least recently used one is gone.
 */
export class PrefixIndex {
  private readonly models = new Map<string, CachedPrompt[]>();
  private tick = 0;

  /** `total`: hashes kept over all models at most (the least recently used prompts go first). */
  constructor(private readonly total = 4096) {}

  /**
   * Notes that `model` (with `slots` slots) runs a prompt with `chain`. True when the prompt took a slot of its own
   * (a new conversation: worth publishing soon), false when it continued a cached one or has no full block.
   */
  record(model: string, chain: readonly string[], slots: number): boolean {
    if (chain.length === 0) return false;
    let prompts = this.models.get(model);
    if (!prompts) this.models.set(model, (prompts = []));
    const at = ++this.tick;
    // The longest cached prompt this one continues keeps its slot.
    let continued: CachedPrompt | undefined;
    for (const p of prompts)
      if (
        p.chain.length <= chain.length &&
        startsWith(chain, p.chain) &&
        (!continued || p.chain.length > continued.chain.length)
      )
        continued = p;
    if (continued) {
      continued.chain = chain;
      continued.at = at;
      return false;
    }
    prompts.push({ chain, at });
    prompts.sort((a, b) => b.at - a.at);
    prompts.length = Math.min(prompts.length, Math.max(1, slots));
    this.trimTotal();
    return true;
  }

  /** Forgets a model (it was unloaded: its cache is gone). */
  forget(model: string): void {
    this.models.delete(model);
  }

  /** The hashes of the prompts each model's slots hold (what a heartbeat publishes). */
  summary(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [model, prompts] of this.models) out[model] = [...new Set(prompts.flatMap((p) => p.chain))];
    return out;
  }

  private trimTotal(): void {
    let size = 0;
    for (const prompts of this.models.values()) for (const p of prompts) size += p.chain.length;
    while (size > this.total) {
      let oldest: { prompts: CachedPrompt[]; index: number; at: number } | undefined;
      for (const prompts of this.models.values())
        prompts.forEach((p, index) => {
          if (!oldest || p.at < oldest.at) oldest = { prompts, index, at: p.at };
        });
      if (!oldest) return;
      size -= oldest.prompts[oldest.index]!.chain.length;
      oldest.prompts.splice(oldest.index, 1);
    }
  }
}

function startsWith(chain: readonly string[], prefix: readonly string[]): boolean {
  for (let i = 0; i < prefix.length; i++) if (chain[i] !== prefix[i]) return false;
  return true;
}
