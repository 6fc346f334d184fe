import { GgufError } from "./errors.js";
import type { GgufFile } from "./gguf-file.js";
import { isArrayValue } from "./values.js";

/**
 * Hyper-parameters that must agree with the tensors they describe. llama.cpp refuses a disagreement at load ("wrong
 * shape", "missing tensor"), but only after the daemon has planned memory from the metadata: a file whose tensors
 * are small and whose metadata claims a 2^31-wide model asks for terabytes. Checks, when the tensors are present:
 * `token_embd.weight` is `[embedding_length, vocabulary size]`, each `blk.<i>.ffn_up.weight` has
 * `feed_forward_length` rows and each `blk.<i>.attn_k.weight` `head_count_kv x key length` rows, and the `blk.<i>.*`
 * tensors number `block_count` blocks.
 * @throws {GgufError} code "bad_metadata", naming the key, the tensor and both values.
 */
export function checkTensorShapes(file: GgufFile): void {
  const arch = file.metadata["general.architecture"];
  if (typeof arch !== "string") return;
  const embd = file.metadata[`${arch}.embedding_length`];
  const tokens = file.metadata["tokenizer.ggml.tokens"];
  const blocks = file.metadata[`${arch}.block_count`];
  const tokenEmbd = file.tensors.find((t) => t.name === "token_embd.weight");
  if (tokenEmbd && typeof embd === "number" && tokenEmbd.dims[0] !== embd) {
    throw new GgufError(
      "bad_metadata",
      `${arch}.embedding_length is ${embd} but tensor "token_embd.weight" is ${tokenEmbd.dims[0]} wide`,
    );
  }
  if (tokenEmbd && isArrayValue(tokens) && tokenEmbd.dims.length === 2 && tokenEmbd.dims[1] !== tokens.length) {
    throw new GgufError(
      "bad_metadata",
      `tokenizer.ggml.tokens has ${tokens.length} tokens but tensor "token_embd.weight" has ${tokenEmbd.dims[1]} rows`,
    );
  }
  // Feed-forward and key widths feed the memory estimate too. Their tensors' shapes vary between architectures
  // (phi3 fuses gate and up, MLA models split keys), so they are checked for llama, whose shapes are fixed.
  if (arch !== "llama") return checkBlocks(file, arch, blocks);
  const perLayer = (key: string, layer: number): number | undefined => {
    const v = file.metadata[key];
    const x = Array.isArray(v) ? v[Math.min(layer, v.length - 1)] : v;
    return typeof x === "number" ? x : undefined;
  };
  const heads = (layer: number) => perLayer(`${arch}.attention.head_count`, layer);
  for (const t of file.tensors) {
    const m = /^blk\.(\d+)\.(ffn_up|attn_k)\.weight$/.exec(t.name);
    if (!m || t.dims.length !== 2) continue;
    const layer = Number(m[1]);
    if (m[2] === "ffn_up") {
      const ff = perLayer(`${arch}.feed_forward_length`, layer);
      if (ff !== undefined && ff !== 0 && t.dims[1] !== ff)
        throw new GgufError(
          "bad_metadata",
          `${arch}.feed_forward_length is ${ff} but tensor "${t.name}" has ${t.dims[1]} rows`,
        );
    } else {
      const kv = perLayer(`${arch}.attention.head_count_kv`, layer) ?? heads(layer);
      const h = heads(layer);
      const keyLength =
        perLayer(`${arch}.attention.key_length`, layer) ?? (typeof embd === "number" && h ? embd / h : undefined);
      if (kv !== undefined && keyLength !== undefined && t.dims[1] !== kv * keyLength)
        throw new GgufError(
          "bad_metadata",
          `${arch}.attention.head_count_kv ${kv} x key length ${keyLength} is ${kv * keyLength} but tensor "${t.name}" has ${t.dims[1]} rows`,
        );
    }
  }
  checkBlocks(file, arch, blocks);
}

/** The `blk.<i>.*` tensors number `block_count` blocks. */
function checkBlocks(file: GgufFile, arch: string, blocks: unknown): void {
  let highest = -1;
  for (const t of file.tensors) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (m) highest = Math.max(highest, Number(m[1]));
  }
  if (highest >= 0 && typeof blocks === "number" && highest + 1 !== blocks) {
    throw new GgufError(
      "bad_metadata",
      `${arch}.block_count is ${blocks} but the file has tensors for ${highest + 1} blocks (blk.0 to blk.${highest})`,
    );
  }
}
