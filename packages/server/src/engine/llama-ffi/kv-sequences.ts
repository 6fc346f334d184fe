/**
 * The prompt cache's view of a llama_context's KV memory (`KvSequenceOps`), over the llama_memory_* functions.
 *
 * How a prefix is copied depends on the cache layout (llama-kv-cache.cpp, `seq_cp`, in the pinned release):
 * - one unified cache: the copy only marks the source's cells as also belonging to the destination (no data is
 *   moved, the cells are shared until one side drops them);
 * - one KV stream per sequence (kv_unified = false, see createContext): llama.cpp copies the whole source stream,
 *   cell layout and buffers, and only for the full range of positions. The buffer copy is queued and done at the
 *   start of the next llama_decode, before that decode writes any cell, so the source may keep generating. The
 *   destination then drops the positions past the shared prefix.
 */
import type { KvSequenceOps } from "../prompt-cache/slot-table.js";
import type { Ptr } from "./bindings.js";
import type { KvMemoryApi } from "./kv-memory-bindings.js";

export function kvSequenceOps(llama: KvMemoryApi, mem: Ptr, streamPerSequence: boolean): KvSequenceOps {
  return {
    trim: (seq, from) => llama.llama_memory_seq_rm(mem, seq, from, -1),
    clear: (seq) => void llama.llama_memory_seq_rm(mem, seq, -1, -1),
    copyPrefix(src, dst, n) {
      if (streamPerSequence) {
        llama.llama_memory_seq_cp(mem, src, dst, -1, -1);
        return llama.llama_memory_seq_rm(mem, dst, n, -1);
      }
      llama.llama_memory_seq_rm(mem, dst, -1, -1);
      llama.llama_memory_seq_cp(mem, src, dst, 0, n);
      return true;
    },
    span(seq) {
      const max = llama.llama_memory_seq_pos_max(mem, seq);
      if (max < 0) return null;
      return { min: llama.llama_memory_seq_pos_min(mem, seq), max };
    },
  };
}
