/**
 * koffi bindings of libllama's KV memory API (`llama_memory_*` in `include/llama.h` of the pinned release), kept
 * apart from the rest of the bindings: the prompt cache keeps, trims and copies sequences' cells with them.
 *
 * Each function is declared twice: the koffi declaration the engine calls, and the C types of the header. The
 * layout test (`test/engine/llama-ffi-layout.test.ts`) compiles a check that the header's function has exactly
 * those C types, and compares their sizes and kinds with koffi's view of the declaration, so a changed signature
 * fails a test instead of corrupting arguments.
 */
import type { FfiFunction as F, Ptr } from "./ffi-types.js";

/** The KV memory functions the engine calls, typed. `llama_pos` and `llama_seq_id` are int32. */
export interface KvMemoryApi {
  llama_get_memory: F<[ctx: Ptr], Ptr>;
  llama_memory_clear: F<[mem: Ptr, data: boolean], void>;
  llama_memory_seq_rm: F<[mem: Ptr, seq: number, p0: number, p1: number], boolean>;
  llama_memory_seq_cp: F<[mem: Ptr, src: number, dst: number, p0: number, p1: number], void>;
  llama_memory_seq_pos_min: F<[mem: Ptr, seq: number], number>;
  llama_memory_seq_pos_max: F<[mem: Ptr, seq: number], number>;
}

/** One function: koffi's declaration and the header's C signature (result type, then parameter types). */
export interface KvMemorySignature {
  decl: string;
  header: { result: string; params: string[] };
}

export const KV_MEMORY_SIGNATURES: Record<keyof KvMemoryApi, KvMemorySignature> = {
  llama_get_memory: {
    decl: "void *llama_get_memory(void *ctx)",
    header: { result: "llama_memory_t", params: ["const struct llama_context *"] },
  },
  llama_memory_clear: {
    decl: "void llama_memory_clear(void *mem, bool data)",
    header: { result: "void", params: ["llama_memory_t", "bool"] },
  },
  llama_memory_seq_rm: {
    decl: "bool llama_memory_seq_rm(void *mem, int32_t seq_id, int32_t p0, int32_t p1)",
    header: { result: "bool", params: ["llama_memory_t", "llama_seq_id", "llama_pos", "llama_pos"] },
  },
  llama_memory_seq_cp: {
    decl: "void llama_memory_seq_cp(void *mem, int32_t seq_id_src, int32_t seq_id_dst, int32_t p0, int32_t p1)",
    header: { result: "void", params: ["llama_memory_t", "llama_seq_id", "llama_seq_id", "llama_pos", "llama_pos"] },
  },
  llama_memory_seq_pos_min: {
    decl: "int32_t llama_memory_seq_pos_min(void *mem, int32_t seq_id)",
    header: { result: "llama_pos", params: ["llama_memory_t", "llama_seq_id"] },
  },
  llama_memory_seq_pos_max: {
    decl: "int32_t llama_memory_seq_pos_max(void *mem, int32_t seq_id)",
    header: { result: "llama_pos", params: ["llama_memory_t", "llama_seq_id"] },
  },
};

/** The koffi declarations, keyed by function name (merged into libllama's bindings). */
export const KV_MEMORY_DECLS = Object.fromEntries(
  Object.entries(KV_MEMORY_SIGNATURES).map(([name, s]) => [name, s.decl]),
) as Record<keyof KvMemoryApi, string>;
