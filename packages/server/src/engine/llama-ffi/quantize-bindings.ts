/**
 * koffi bindings of libllama's quantization API (`llama_model_quantize`) and of the ggml tensor struct the
 * importance-matrix collector reads in its eval callback. Kept apart from bindings.ts: only the model-tool worker
 * (runner/model-tool-worker.ts) loads them.
 *
 * Every struct mirrors `include/llama.h` / `ggml/include/ggml.h` of the pinned release; the layout test
 * (`test/engine/llama-ffi-layout.test.ts`) compares each member offset with the compiled header, and checks
 * `llama_model_quantize_default_params()` read back through these definitions.
 */
import koffi, { type TypeObject } from "koffi";
import type { Bindings, Ptr, PtrArg } from "./bindings.js";

/** `GGML_TYPE_COUNT` of this release: "no override" for the output / token-embedding tensor types. */
export const GGML_TYPE_COUNT = 43;
/** `GGML_MAX_DIMS`, `GGML_MAX_SRC`, `GGML_MAX_OP_PARAMS`, `GGML_MAX_NAME`. */
const GGML_MAX_DIMS = 4;
const GGML_MAX_SRC = 10;
const GGML_MAX_OP_PARAMS = 64;
export const GGML_MAX_NAME = 64;

/** `struct llama_model_quantize_params` (64 bytes in this release). */
export const LlamaModelQuantizeParams = koffi.struct("llama_model_quantize_params", {
  nthread: "int32_t",
  ftype: "int",
  output_tensor_type: "int",
  token_embedding_type: "int",
  allow_requantize: "bool",
  quantize_output_tensor: "bool",
  only_copy: "bool",
  pure: "bool",
  keep_split: "bool",
  dry_run: "bool",
  imatrix: "void *",
  kv_overrides: "void *",
  tt_overrides: "void *",
  prune_layers: "void *",
  max_buf_size: "size_t",
});

/** `struct llama_model_imatrix_data` (24 bytes): one tensor's importance values; an array ends with name NULL. */
export const LlamaModelImatrixData = koffi.struct("llama_model_imatrix_data", {
  name: "void *",
  data: "void *",
  size: "size_t",
});

/** `struct ggml_tensor` (336 bytes): read in the eval callback to find matrix products and their inputs. */
export const GgmlTensor = koffi.struct("ggml_tensor", {
  type: "int",
  buffer: "void *",
  ne: koffi.array("int64_t", GGML_MAX_DIMS),
  nb: koffi.array("size_t", GGML_MAX_DIMS),
  op: "int",
  op_params: koffi.array("int32_t", GGML_MAX_OP_PARAMS / 4),
  flags: "int32_t",
  src: koffi.array("void *", GGML_MAX_SRC),
  view_src: "void *",
  view_offs: "size_t",
  data: "void *",
  name: koffi.array("char", GGML_MAX_NAME),
  extra: "void *",
  padding: koffi.array("char", 8),
});

/** The structs of this module checked against the C header, keyed by their C name. */
export const QUANTIZE_LAYOUT_STRUCTS: Record<string, TypeObject> = {
  llama_model_quantize_params: LlamaModelQuantizeParams,
  llama_model_imatrix_data: LlamaModelImatrixData,
  ggml_tensor: GgmlTensor,
};

/** Function type of `ggml_backend_sched_eval_callback`. */
export const GgmlEvalCallback = koffi.proto("bool ggml_eval_callback_t(void *tensor, bool ask, void *user_data)");

/** JS view of `llama_model_quantize_params` as koffi decodes it. */
export interface QuantizeParamsValue {
  nthread: number;
  ftype: number;
  output_tensor_type: number;
  token_embedding_type: number;
  allow_requantize: boolean;
  quantize_output_tensor: boolean;
  only_copy: boolean;
  pure: boolean;
  keep_split: boolean;
  dry_run: boolean;
  imatrix: Ptr | null;
  kv_overrides: Ptr | null;
  tt_overrides: Ptr | null;
  prune_layers: Ptr | null;
  max_buf_size: number | bigint;
}

type AsyncFn<A extends unknown[], R> = ((...args: A) => R) & {
  async: (...args: [...A, (err: unknown, res: R) => void]) => void;
};

/** The quantization and eval functions, typed. */
export interface QuantizeApi {
  llama_model_quantize_default_params: () => QuantizeParamsValue;
  /** Returns 0 on success; the reason of a failure is logged ("failed to quantize: ..."). */
  llama_model_quantize: AsyncFn<[input: string, output: string, params: PtrArg], number>;
  /** `ggml_op_name`: the name of an op, to find GGML_OP_MUL_MAT's value at run time. */
  ggml_op_name: (op: number) => string | null;
  /** `ggml_backend_buffer_is_host`: whether a tensor's data is in host memory. */
  ggml_backend_buffer_is_host: (buffer: Ptr) => boolean;
  /** `ggml_backend_tensor_get`: copies a tensor's bytes (from any backend) into host memory. */
  ggml_backend_tensor_get: (tensor: Ptr, data: PtrArg, offset: number, size: number) => void;
  /** `llama_get_logits_ith` is in the main bindings; all-logits contexts need nothing more. */
}

let bound: QuantizeApi | undefined;

/** Binds the quantization functions from the libraries `bindings` loaded (once per process). */
export function quantizeApi(bindings: Bindings, paths: { llama: string; ggmlBase: string }): QuantizeApi {
  void bindings; // the libraries are loaded by loadBindings; koffi.load returns the same handles
  if (bound) return bound;
  const llama = koffi.load(paths.llama);
  const ggmlBase = koffi.load(paths.ggmlBase);
  bound = {
    llama_model_quantize_default_params: llama.func(
      "llama_model_quantize_params llama_model_quantize_default_params()",
    ) as QuantizeApi["llama_model_quantize_default_params"],
    llama_model_quantize: llama.func(
      "uint32_t llama_model_quantize(const char *fname_inp, const char *fname_out, void *params)",
    ) as QuantizeApi["llama_model_quantize"],
    ggml_op_name: ggmlBase.func("const char *ggml_op_name(int op)") as QuantizeApi["ggml_op_name"],
    ggml_backend_buffer_is_host: ggmlBase.func(
      "bool ggml_backend_buffer_is_host(void *buffer)",
    ) as QuantizeApi["ggml_backend_buffer_is_host"],
    ggml_backend_tensor_get: ggmlBase.func(
      "void ggml_backend_tensor_get(void *tensor, void *data, size_t offset, size_t size)",
    ) as QuantizeApi["ggml_backend_tensor_get"],
  };
  return bound;
}
