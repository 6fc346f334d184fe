/**
 * koffi bindings of the libllama / libggml C API shipped by node-llama-cpp 3.21.1 (llama.cpp release "v0.4.0").
 *
 * Every struct here mirrors `include/llama.h` and `ggml/include/ggml.h` of that release exactly; the layout test
 * (`test/engine/llama-ffi-layout.test.ts`) compiles the real header and compares every member offset, so a header
 * change fails loudly instead of corrupting memory. Pointers are BigInt (koffi 3) or null.
 */
import koffi, { type LibraryHandle, type TypeObject } from "koffi";
import type { FfiFunction, Ptr } from "./ffi-types.js";
import { KV_MEMORY_DECLS, type KvMemoryApi } from "./kv-memory-bindings.js";
import { bindFromLibraryOf, libraryPathOf } from "./library-symbols.js";

export type { Ptr };
/** A pointer argument: a native pointer, a Buffer/typed array koffi pins for the call, or NULL. */
export type PtrArg = bigint | Buffer | ArrayBufferView | null;

// Enum values used by the engine (from llama.h / ggml-backend.h).
export const LLAMA_POOLING_TYPE_MEAN = 1;
export const LLAMA_FLASH_ATTN_TYPE_AUTO = -1;
export const GGML_BACKEND_DEVICE_TYPE_CPU = 0;
export const GGML_BACKEND_DEVICE_TYPE_GPU = 1;
export const LLAMA_DEFAULT_SEED = 0xffffffff;
/** `GGML_MAX_N_THREADS`: the length of `ggml_threadpool_params.cpumask`. */
export const GGML_MAX_N_THREADS = 512;

// Struct definitions. koffi registers struct names globally, so they are created once per process, here.
// enums are `int` (4 bytes) on every ABI we run on.

/** `struct llama_model_params` (80 bytes in this release). */
export const LlamaModelParams = koffi.struct("llama_model_params", {
  devices: "void *",
  tensor_buft_overrides: "void *",
  n_gpu_layers: "int32_t",
  split_mode: "int",
  load_mode: "int",
  lazy_mode: "int",
  main_gpu: "int32_t",
  tensor_split: "void *",
  progress_callback: "void *",
  progress_callback_user_data: "void *",
  kv_overrides: "void *",
  vocab_only: "bool",
  check_tensors: "bool",
  use_extra_bufts: "bool",
  no_host: "bool",
  no_alloc: "bool",
  load_mtp: "bool",
});

/** `struct llama_context_params` (160 bytes in this release). */
export const LlamaContextParams = koffi.struct("llama_context_params", {
  n_ctx: "uint32_t",
  n_batch: "uint32_t",
  n_ubatch: "uint32_t",
  n_seq_max: "uint32_t",
  n_rs_seq: "uint32_t",
  n_outputs_max: "uint32_t",
  n_outputs_max_per_seq: "uint32_t",
  n_threads: "int32_t",
  n_threads_batch: "int32_t",
  ctx_type: "int",
  rope_scaling_type: "int",
  pooling_type: "int",
  attention_type: "int",
  flash_attn_type: "int",
  rope_freq_base: "float",
  rope_freq_scale: "float",
  yarn_ext_factor: "float",
  yarn_attn_factor: "float",
  yarn_beta_fast: "float",
  yarn_beta_slow: "float",
  yarn_orig_ctx: "uint32_t",
  defrag_thold: "float",
  cb_eval: "void *",
  cb_eval_user_data: "void *",
  type_k: "int",
  type_v: "int",
  abort_callback: "void *",
  abort_callback_data: "void *",
  embeddings: "bool",
  offload_kqv: "bool",
  no_perf: "bool",
  op_offload: "bool",
  swa_full: "bool",
  kv_unified: "bool",
  samplers: "void *",
  n_samplers: "size_t",
  ctx_other: "void *",
});

/** `struct llama_batch` (56 bytes). */
export const LlamaBatch = koffi.struct("llama_batch", {
  n_tokens: "int32_t",
  token: "void *",
  embd: "void *",
  pos: "void *",
  n_seq_id: "void *",
  seq_id: "void *",
  logits: "void *",
});

/** `struct llama_sampler_chain_params` (1 byte). */
export const LlamaSamplerChainParams = koffi.struct("llama_sampler_chain_params", {
  no_perf: "bool",
});

/** `struct llama_token_data` (12 bytes); not passed by the engine, kept for the layout check. */
export const LlamaTokenData = koffi.struct("llama_token_data", {
  id: "int32_t",
  logit: "float",
  p: "float",
});

/** `struct llama_token_data_array` (32 bytes). */
export const LlamaTokenDataArray = koffi.struct("llama_token_data_array", {
  data: "void *",
  size: "size_t",
  selected: "int64_t",
  sorted: "bool",
});

/** `struct ggml_threadpool_params` (528 bytes); filled by `ggml_threadpool_params_init` into a Buffer. */
export const GgmlThreadpoolParams = koffi.struct("ggml_threadpool_params", {
  cpumask: koffi.array("bool", GGML_MAX_N_THREADS),
  n_threads: "int",
  prio: "int",
  poll: "uint32_t",
  strict_cpu: "bool",
  paused: "bool",
});

/** The structs checked against the C header, keyed by their C name (`struct <name>`). */
export const LAYOUT_STRUCTS: Record<string, TypeObject> = {
  llama_model_params: LlamaModelParams,
  llama_context_params: LlamaContextParams,
  llama_batch: LlamaBatch,
  llama_sampler_chain_params: LlamaSamplerChainParams,
  llama_token_data: LlamaTokenData,
  llama_token_data_array: LlamaTokenDataArray,
  ggml_threadpool_params: GgmlThreadpoolParams,
};

/** Function type behind `llama_progress_callback` (return false to abort the load). */
export const LlamaProgressCallback = koffi.proto("bool llama_progress_callback_t(float progress, void *user_data)");
/** Function type behind `ggml_log_callback`. */
export const GgmlLogCallback = koffi.proto("void ggml_log_callback_t(int level, const char *text, void *user_data)");
const ThreadpoolNewFn = koffi.proto("void *ggml_threadpool_new_t(void *params)");
const ThreadpoolFreeFn = koffi.proto("void ggml_threadpool_free_t(void *threadpool)");

/** JS view of `llama_model_params` as koffi decodes it. */
export interface ModelParamsValue {
  n_gpu_layers: number;
  use_extra_bufts: boolean;
  vocab_only: boolean;
  [key: string]: unknown;
}

/** JS view of `llama_context_params` as koffi decodes it. */
export interface ContextParamsValue {
  n_ctx: number;
  n_batch: number;
  n_ubatch: number;
  n_seq_max: number;
  n_threads: number;
  n_threads_batch: number;
  pooling_type: number;
  flash_attn_type: number;
  embeddings: boolean;
  no_perf: boolean;
  kv_unified: boolean;
  [key: string]: unknown;
}

/** JS view of `llama_batch` (pointers as BigInt). */
export interface BatchValue {
  n_tokens: number;
  token: Ptr | null;
  embd: Ptr | null;
  pos: Ptr | null;
  n_seq_id: Ptr | null;
  seq_id: Ptr | null;
  logits: Ptr | null;
}

type F<A extends unknown[], R> = FfiFunction<A, R>;

/** The functions the engine calls, typed (the KV memory functions are in kv-memory-bindings.ts). */
export interface LlamaApi extends KvMemoryApi {
  llama_log_set: F<[cb: PtrArg, userData: PtrArg], void>;
  llama_backend_init: F<[], void>;
  llama_model_default_params: F<[], ModelParamsValue>;
  llama_context_default_params: F<[], ContextParamsValue>;
  llama_sampler_chain_default_params: F<[], { no_perf: boolean }>;
  llama_model_load_from_file: F<[path: string, params: ModelParamsValue], Ptr | null>;
  llama_model_free: F<[model: Ptr], void>;
  llama_init_from_model: F<[model: Ptr, params: ContextParamsValue], Ptr | null>;
  llama_free: F<[ctx: Ptr], void>;
  llama_attach_threadpool: F<[ctx: Ptr, tp: Ptr, tpBatch: Ptr], void>;
  llama_detach_threadpool: F<[ctx: Ptr], void>;
  llama_set_n_threads: F<[ctx: Ptr, nThreads: number, nThreadsBatch: number], void>;
  llama_n_threads: F<[ctx: Ptr], number>;
  llama_n_ctx: F<[ctx: Ptr], number>;
  llama_n_ctx_seq: F<[ctx: Ptr], number>;
  llama_n_batch: F<[ctx: Ptr], number>;
  llama_n_seq_max: F<[ctx: Ptr], number>;
  llama_pooling_type: F<[ctx: Ptr], number>;
  llama_model_get_vocab: F<[model: Ptr], Ptr>;
  llama_model_n_ctx_train: F<[model: Ptr], number>;
  llama_model_n_embd: F<[model: Ptr], number>;
  llama_model_meta_val_str: F<[model: Ptr, key: string, buf: Buffer, bufSize: number], number>;
  llama_vocab_n_tokens: F<[vocab: Ptr], number>;
  llama_vocab_bos: F<[vocab: Ptr], number>;
  llama_vocab_eos: F<[vocab: Ptr], number>;
  llama_vocab_get_add_bos: F<[vocab: Ptr], boolean>;
  llama_vocab_is_eog: F<[vocab: Ptr, token: number], boolean>;
  llama_tokenize: F<
    [
      vocab: Ptr,
      text: PtrArg,
      textLen: number,
      tokens: PtrArg,
      max: number,
      addSpecial: boolean,
      parseSpecial: boolean,
    ],
    number
  >;
  llama_token_to_piece: F<
    [vocab: Ptr, token: number, buf: PtrArg, length: number, lstrip: number, special: boolean],
    number
  >;
  llama_detokenize: F<
    [vocab: Ptr, tokens: PtrArg, n: number, text: PtrArg, max: number, removeSpecial: boolean, unparseSpecial: boolean],
    number
  >;
  llama_batch_init: F<[nTokens: number, embd: number, nSeqMax: number], BatchValue>;
  llama_batch_free: F<[batch: BatchValue], void>;
  llama_decode: F<[ctx: Ptr, batch: BatchValue], number>;
  llama_get_logits_ith: F<[ctx: Ptr, i: number], Ptr | null>;
  llama_get_embeddings_seq: F<[ctx: Ptr, seq: number], Ptr | null>;
  llama_sampler_chain_init: F<[params: { no_perf: boolean }], Ptr>;
  llama_sampler_chain_add: F<[chain: Ptr, smpl: Ptr], void>;
  llama_sampler_init_greedy: F<[], Ptr>;
  llama_sampler_init_dist: F<[seed: number], Ptr>;
  llama_sampler_init_top_k: F<[k: number], Ptr>;
  llama_sampler_init_top_p: F<[p: number, minKeep: number], Ptr>;
  llama_sampler_init_min_p: F<[p: number, minKeep: number], Ptr>;
  llama_sampler_init_temp: F<[t: number], Ptr>;
  llama_sampler_init_penalties: F<[nVocab: number, lastN: number, repeat: number, freq: number, present: number], Ptr>;
  llama_sampler_init_grammar: F<[vocab: Ptr, grammar: string, root: string], Ptr | null>;
  llama_sampler_sample: F<[smpl: Ptr, ctx: Ptr, idx: number], number>;
  llama_sampler_free: F<[smpl: Ptr], void>;
  llama_adapter_lora_init: F<[model: Ptr, path: string], Ptr | null>;
  llama_adapter_lora_free: F<[adapter: Ptr], void>;
  llama_set_adapters_lora: F<[ctx: Ptr, adapters: PtrArg, n: number, scales: PtrArg], number>;
  llama_supports_gpu_offload: F<[], boolean>;
}

/** The ggml functions the engine calls (from libggml / libggml-base). */
export interface GgmlApi {
  ggml_backend_load_all_from_path: F<[dir: string], void>;
  ggml_backend_load: F<[path: string], Ptr | null>;
  ggml_backend_dev_count: F<[], number>;
  ggml_backend_dev_get: F<[i: number], Ptr>;
  ggml_backend_dev_name: F<[dev: Ptr], string>;
  ggml_backend_dev_type: F<[dev: Ptr], number>;
  ggml_backend_dev_by_type: F<[type: number], Ptr | null>;
  ggml_backend_dev_backend_reg: F<[dev: Ptr], Ptr | null>;
  ggml_backend_reg_get_proc_address: F<[reg: Ptr, name: string], Ptr | null>;
  ggml_threadpool_params_init: F<[params: PtrArg, nThreads: number], void>;
}

const LLAMA_DECLS: Record<Exclude<keyof LlamaApi, keyof KvMemoryApi>, string> = {
  llama_log_set: "void llama_log_set(void *cb, void *user_data)",
  llama_backend_init: "void llama_backend_init()",
  llama_model_default_params: "llama_model_params llama_model_default_params()",
  llama_context_default_params: "llama_context_params llama_context_default_params()",
  llama_sampler_chain_default_params: "llama_sampler_chain_params llama_sampler_chain_default_params()",
  llama_model_load_from_file: "void *llama_model_load_from_file(const char *path, llama_model_params params)",
  llama_model_free: "void llama_model_free(void *model)",
  llama_init_from_model: "void *llama_init_from_model(void *model, llama_context_params params)",
  llama_free: "void llama_free(void *ctx)",
  llama_attach_threadpool: "void llama_attach_threadpool(void *ctx, void *tp, void *tp_batch)",
  llama_detach_threadpool: "void llama_detach_threadpool(void *ctx)",
  llama_set_n_threads: "void llama_set_n_threads(void *ctx, int32_t n_threads, int32_t n_threads_batch)",
  llama_n_threads: "int32_t llama_n_threads(void *ctx)",
  llama_n_ctx: "uint32_t llama_n_ctx(void *ctx)",
  llama_n_ctx_seq: "uint32_t llama_n_ctx_seq(void *ctx)",
  llama_n_batch: "uint32_t llama_n_batch(void *ctx)",
  llama_n_seq_max: "uint32_t llama_n_seq_max(void *ctx)",
  llama_pooling_type: "int llama_pooling_type(void *ctx)",
  llama_model_get_vocab: "void *llama_model_get_vocab(void *model)",
  llama_model_n_ctx_train: "int32_t llama_model_n_ctx_train(void *model)",
  llama_model_n_embd: "int32_t llama_model_n_embd(void *model)",
  llama_model_meta_val_str:
    "int32_t llama_model_meta_val_str(void *model, const char *key, void *buf, size_t buf_size)",
  llama_vocab_n_tokens: "int32_t llama_vocab_n_tokens(void *vocab)",
  llama_vocab_bos: "int32_t llama_vocab_bos(void *vocab)",
  llama_vocab_eos: "int32_t llama_vocab_eos(void *vocab)",
  llama_vocab_get_add_bos: "bool llama_vocab_get_add_bos(void *vocab)",
  llama_vocab_is_eog: "bool llama_vocab_is_eog(void *vocab, int32_t token)",
  llama_tokenize:
    "int32_t llama_tokenize(void *vocab, void *text, int32_t text_len, void *tokens, int32_t n_tokens_max, bool add_special, bool parse_special)",
  llama_token_to_piece:
    "int32_t llama_token_to_piece(void *vocab, int32_t token, void *buf, int32_t length, int32_t lstrip, bool special)",
  llama_detokenize:
    "int32_t llama_detokenize(void *vocab, void *tokens, int32_t n_tokens, void *text, int32_t text_len_max, bool remove_special, bool unparse_special)",
  llama_batch_init: "llama_batch llama_batch_init(int32_t n_tokens, int32_t embd, int32_t n_seq_max)",
  llama_batch_free: "void llama_batch_free(llama_batch batch)",
  llama_decode: "int32_t llama_decode(void *ctx, llama_batch batch)",
  llama_get_logits_ith: "void *llama_get_logits_ith(void *ctx, int32_t i)",
  llama_get_embeddings_seq: "void *llama_get_embeddings_seq(void *ctx, int32_t seq_id)",
  llama_sampler_chain_init: "void *llama_sampler_chain_init(llama_sampler_chain_params params)",
  llama_sampler_chain_add: "void llama_sampler_chain_add(void *chain, void *smpl)",
  llama_sampler_init_greedy: "void *llama_sampler_init_greedy()",
  llama_sampler_init_dist: "void *llama_sampler_init_dist(uint32_t seed)",
  llama_sampler_init_top_k: "void *llama_sampler_init_top_k(int32_t k)",
  llama_sampler_init_top_p: "void *llama_sampler_init_top_p(float p, size_t min_keep)",
  llama_sampler_init_min_p: "void *llama_sampler_init_min_p(float p, size_t min_keep)",
  llama_sampler_init_temp: "void *llama_sampler_init_temp(float t)",
  llama_sampler_init_penalties:
    "void *llama_sampler_init_penalties(int32_t n_vocab, int32_t last_n, float repeat, float freq, float present)",
  llama_sampler_init_grammar: "void *llama_sampler_init_grammar(void *vocab, const char *grammar, const char *root)",
  llama_sampler_sample: "int32_t llama_sampler_sample(void *smpl, void *ctx, int32_t idx)",
  llama_sampler_free: "void llama_sampler_free(void *smpl)",
  llama_adapter_lora_init: "void *llama_adapter_lora_init(void *model, const char *path)",
  llama_adapter_lora_free: "void llama_adapter_lora_free(void *adapter)",
  llama_set_adapters_lora: "int32_t llama_set_adapters_lora(void *ctx, void *adapters, size_t n, void *scales)",
  llama_supports_gpu_offload: "bool llama_supports_gpu_offload()",
};

const GGML_DECLS: Record<keyof GgmlApi, string> = {
  ggml_backend_load_all_from_path: "void ggml_backend_load_all_from_path(const char *dir)",
  ggml_backend_load: "void *ggml_backend_load(const char *path)",
  ggml_backend_dev_count: "size_t ggml_backend_dev_count()",
  ggml_backend_dev_get: "void *ggml_backend_dev_get(size_t i)",
  ggml_backend_dev_name: "const char *ggml_backend_dev_name(void *dev)",
  ggml_backend_dev_type: "int ggml_backend_dev_type(void *dev)",
  ggml_backend_dev_by_type: "void *ggml_backend_dev_by_type(int type)",
  ggml_backend_dev_backend_reg: "void *ggml_backend_dev_backend_reg(void *dev)",
  ggml_backend_reg_get_proc_address: "void *ggml_backend_reg_get_proc_address(void *reg, const char *name)",
  ggml_threadpool_params_init: "void ggml_threadpool_params_init(void *params, int n_threads)",
};

/** Everything bound from one set of loaded libraries. */
export interface Bindings {
  llama: LlamaApi;
  ggml: GgmlApi;
  /** Address of a native function ignoring its arguments (libc `getpid`), used as a silent log callback. */
  nativeNoop: Ptr;
  /** `ggml_threadpool_new` / `ggml_threadpool_free`, resolved from the CPU backend registry. */
  threadpoolNew(params: Buffer): Ptr | null;
  threadpoolFree(tp: Ptr): void;
  /**
   * `ggml_threadpool_pause`: its workers sleep until the next graph is computed (which resumes the pool). Without
   * it, idle workers busy-poll for a while after every decode. Null when the CPU backend's library cannot be found.
   */
  threadpoolPause(): ((tp: Ptr) => void) | null;
  /** Path of the library the registered CPU backend lives in (a shipped variant, or one built here); null if unknown. */
  cpuLibraryPath(): string | null;
}

function bindAll<T>(lib: LibraryHandle, decls: Record<string, string>): T {
  const out: Record<string, unknown> = {};
  for (const [name, decl] of Object.entries(decls)) out[name] = lib.func(decl);
  return out as T;
}

/**
 * Load libllama and libggml from absolute paths and bind the API.
 * The ggml CPU threadpool functions are not exported by libggml; they are looked up lazily through the backend
 * registry (`ggml_backend_dev_by_type(CPU)` -> reg -> `ggml_backend_reg_get_proc_address`), which only works after
 * `ggml_backend_load_all_from_path` has registered the CPU backend.
 */
export function loadBindings(paths: { llama: string; ggml: string; ggmlBase: string }): Bindings {
  const ggmlBaseLib = koffi.load(paths.ggmlBase);
  const ggmlLib = koffi.load(paths.ggml);
  const llamaLib = koffi.load(paths.llama);
  const llama = bindAll<LlamaApi>(llamaLib, { ...LLAMA_DECLS, ...KV_MEMORY_DECLS });
  const ggmlBase = bindAll<Pick<GgmlApi, "ggml_threadpool_params_init">>(ggmlBaseLib, {
    ggml_threadpool_params_init: GGML_DECLS.ggml_threadpool_params_init,
  });
  const { ggml_threadpool_params_init: _skip, ...rest } = GGML_DECLS;
  void _skip;
  const ggml = { ...bindAll<Omit<GgmlApi, "ggml_threadpool_params_init">>(ggmlLib, rest), ...ggmlBase } as GgmlApi;
  const libc = koffi.load("libc.so.6");
  const nativeNoop = libc.symbol("getpid") as Ptr;

  let pauseFn: ((tp: Ptr) => void) | null | undefined;
  let newPtr: Ptr | undefined;
  let newFn: ((params: Buffer) => Ptr | null) | undefined;
  let freeFn: ((tp: Ptr) => void) | undefined;
  const resolveThreadpoolFns = (): void => {
    if (newFn && freeFn) return;
    const dev = ggml.ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (!dev) throw new Error("ggml: no CPU backend device registered");
    const reg = ggml.ggml_backend_dev_backend_reg(dev);
    if (!reg) throw new Error("ggml: CPU device has no backend registry");
    const pNew = ggml.ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new");
    const pFree = ggml.ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free");
    if (!pNew || !pFree) throw new Error("ggml: CPU backend does not expose ggml_threadpool_new/free");
    newPtr = pNew;
    newFn = koffi.decode(pNew, ThreadpoolNewFn) as (params: Buffer) => Ptr | null;
    freeFn = koffi.decode(pFree, ThreadpoolFreeFn) as (tp: Ptr) => void;
  };
  return {
    llama,
    ggml,
    nativeNoop,
    threadpoolNew(params) {
      resolveThreadpoolFns();
      return newFn!(params);
    },
    threadpoolFree(tp) {
      resolveThreadpoolFns();
      freeFn!(tp);
    },
    threadpoolPause() {
      if (pauseFn !== undefined) return pauseFn;
      resolveThreadpoolFns();
      const fn = bindFromLibraryOf<(tp: Ptr) => void>(libc, newPtr!, "void ggml_threadpool_pause(void *threadpool)");
      pauseFn = fn;
      return fn;
    },
    cpuLibraryPath() {
      resolveThreadpoolFns();
      return libraryPathOf(libc, newPtr!);
    },
  };
}
