import { GgufError } from "./errors.js";
import type { GgufFile } from "./types.js";

/**
 * Hyper-parameters that must agree with the tensors they describe. llama.cpp refuses a disagreement at load ("wrong
 * shape", "missing tensor"), but only after the daemon has planned memory from the metadata: a file whose tensors
 * are small and whose metadata claims a 2^31-wide model asks for terabytes. Checks, when the tensors are present:
 * `token_embd.weight` is `[embedding_length, vocabulary size]`, and the `blk.<i>.*` tensors number `block_count`
 * blocks.
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
  if (tokenEmbd && Array.isArray(tokens) && tokenEmbd.dims.length === 2 && tokenEmbd.dims[1] !== tokens.length) {
    throw new GgufError(
      "bad_metadata",
      `tokenizer.ggml.tokens has ${tokens.length} tokens but tensor "token_embd.weight" has ${tokenEmbd.dims[1]} rows`,
    );
  }
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
