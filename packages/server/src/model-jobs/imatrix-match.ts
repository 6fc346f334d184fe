/**
 * Does an importance matrix belong to a model? llama.cpp's quantizer takes the values of each tensor by name and
 * aborts when their count is not the tensor's `columns x matrices`; a file made for another model either names
 * tensors this one lacks or has the wrong sizes. Checked before any work starts, with the first mismatch named.
 */

/** A weight of the model: its name and ggml dims. */
export interface ModelTensorShape {
  name: string;
  dims: number[];
}

/** Null when every entry fits the model, else the first problem (for the error message). */
export function imatrixMismatch(
  entries: ReadonlyMap<string, { columns: number; matrices: number }>,
  tensors: readonly ModelTensorShape[],
): string | null {
  if (entries.size === 0) return "the importance matrix has no entries";
  const byName = new Map(tensors.map((t) => [t.name, t]));
  let matched = 0;
  for (const [name, e] of entries) {
    const t = byName.get(name);
    if (!t) return `the importance matrix has an entry for ${name}, which this model does not have`;
    const expected = t.dims[0]! * (t.dims[2] ?? 1);
    const got = e.columns * e.matrices;
    if (got !== expected && !name.startsWith("token_embd"))
      return `the importance matrix has ${got} values for ${name}, which has ${expected} columns in this model`;
    matched++;
  }
  return matched > 0 ? null : "no entry of the importance matrix names a tensor of this model";
}
