import { GgufError } from "./errors.js";
import type { GgufFile } from "./gguf-file.js";
import { isArrayValue, type GgufMetadataValue } from "./values.js";

/**
 * ggml's TENSOR_ALIGNMENT: llama.cpp maps a model's tensor data in place and asserts that the first tensor of each
 * mapped buffer sits on a 32-byte boundary (`ggml_backend_cpu_buffer_from_ptr`: "buffer pointer must be aligned").
 */
export const LLAMA_MIN_ALIGNMENT = 32;

/**
 * The `tokenizer.ggml.model` values llama.cpp's vocabulary loader knows (llama-vocab.cpp, `llama_vocab::impl::load`),
 * and the vocabulary type each becomes. Anything else fails the load ("unknown tokenizer").
 */
export const LLAMA_TOKENIZER_MODELS: Readonly<
  Record<string, "none" | "spm" | "wpm" | "bpe" | "ugm" | "rwkv" | "plamo2">
> = {
  none: "none",
  no_vocab: "none",
  llama: "spm",
  bert: "wpm",
  gpt2: "bpe",
  hybriddna: "bpe",
  whitespace: "bpe",
  gemma4: "bpe",
  t5: "ugm",
  rwkv: "rwkv",
  plamo2: "plamo2",
};

/** token_type value of byte tokens (`<0x0A>`), llama.cpp's LLAMA_TOKEN_TYPE_BYTE. */
const TOKEN_TYPE_BYTE = 6;

function fail(message: string, code: "bad_metadata" | "bad_alignment" = "bad_metadata"): never {
  throw new GgufError(code, message);
}

/**
 * Values that pass llama.cpp's own loader but make it abort the whole process later (a GGML_ASSERT or GGML_ABORT at
 * load or on the first decode), found by reading its source and by the model-file fuzz campaign. Each check names
 * the key, the value and what llama.cpp does with it:
 * - `general.alignment` below 32: tensor data mapped in place is not 32-byte aligned (assert at load);
 * - `<arch>.attention.layer_norm_epsilon` / `layer_norm_rms_epsilon` NaN, negative or infinite: the norm kernels
 *   assert `eps >= 0` on the first decode (infinity passes the assert and turns every activation into NaN);
 * - `tokenizer.ggml.model` missing or not one llama.cpp knows (the load fails), `none`/`no_vocab` (llmos tokenizes
 *   every request and llama.cpp asserts there is a vocabulary), `bert` (WordPiece) with byte tokens (llama.cpp aborts
 *   turning a byte token into text: WordPiece has no byte fallback), and the BPE models without
 *   `tokenizer.ggml.merges` (the load fails).
 *
 * @throws {GgufError} code "bad_alignment" or "bad_metadata".
 */
export function checkLlamaAsserts(file: GgufFile): void {
  const md = file.metadata;
  const get = (k: string): GgufMetadataValue | undefined =>
    Object.prototype.hasOwnProperty.call(md, k) ? md[k] : undefined;

  if (file.alignment < LLAMA_MIN_ALIGNMENT) {
    fail(
      `general.alignment is ${file.alignment}; llama.cpp maps tensor data in place and needs at least ${LLAMA_MIN_ALIGNMENT} (it aborts on unaligned data)`,
      "bad_alignment",
    );
  }

  for (const key of Object.keys(md)) {
    if (!/\.attention\.layer_norm(_rms)?_epsilon$/.test(key)) continue;
    const eps = md[key];
    if (typeof eps !== "number" || !Number.isFinite(eps) || eps < 0) {
      fail(
        `${key} is ${String(eps)} (must be a finite number >= 0: llama.cpp's norm kernels abort on a negative or NaN epsilon)`,
      );
    }
  }

  const model = get("tokenizer.ggml.model");
  if (model === undefined) fail(`tokenizer.ggml.model is missing (llama.cpp cannot load a model without it)`);
  if (typeof model !== "string" || !Object.prototype.hasOwnProperty.call(LLAMA_TOKENIZER_MODELS, model)) {
    fail(
      `tokenizer.ggml.model is ${JSON.stringify(model)}, which llama.cpp cannot load (known: ${Object.keys(LLAMA_TOKENIZER_MODELS).join(", ")})`,
    );
  }
  const vocabType = LLAMA_TOKENIZER_MODELS[model];
  if (vocabType === "none") {
    fail(`tokenizer.ggml.model is "${model}": the model has no vocabulary, and llmos needs one to read prompts`);
  }
  if (vocabType === "wpm") {
    const types = get("tokenizer.ggml.token_type");
    // A vocabulary-sized array may be a GgufArrayRef: walked element by element, never built.
    let byteId = -1;
    if (isArrayValue(types)) {
      let i = 0;
      for (const t of types) {
        if (t === TOKEN_TYPE_BYTE) {
          byteId = i;
          break;
        }
        i++;
      }
    }
    if (byteId !== -1) {
      fail(
        `tokenizer.ggml.model is "bert" (WordPiece) but token ${byteId} is a byte token (token_type 6); llama.cpp aborts when it turns a byte token of a WordPiece vocabulary into text`,
      );
    }
  }
  if (vocabType === "bpe" && get("tokenizer.ggml.merges") === undefined && get("tokenizer.ggml.pre") !== "kimi-k2") {
    fail(`tokenizer.ggml.model is "${model}" (BPE) but tokenizer.ggml.merges is missing (llama.cpp cannot load it)`);
  }
}
