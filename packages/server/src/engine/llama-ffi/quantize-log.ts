/**
 * What llama.cpp's quantizer says in its log, turned into facts. `llama_model_quantize` reports nothing but a status
 * code: its progress (one `[  i/  n] name ...` line per tensor), the tensors that fell back to another type, the
 * size it computed and the reason of a failure are all log lines of this release's `src/llama-quant.cpp`.
 */

/** One fact read from a log line. */
export type QuantizeLogEvent =
  | { kind: "tensor"; index: number; total: number; name: string }
  | { kind: "fallback"; name: string }
  | { kind: "fallback-count"; count: number; total: number }
  | { kind: "size"; which: "model" | "quant"; mib: number }
  | { kind: "failure"; reason: string };

const TENSOR = /^\[\s*(\d+)\/\s*(\d+)\]\s+(\S+)/;
const FALLBACK = /^warning:\s+(\S+)\s+- ncols .* falling back to/;
const FALLBACK_COUNT = /WARNING: (\d+) of (\d+) tensor\(s\) required fallback quantization/;
const SIZE = /llama_model_quantize_impl: (model|quant) size\s+=\s+([\d.]+) MiB/;
const FAILURE = /failed to quantize: (.*)$/;

/** Reads one log line; null when it carries nothing we use. */
export function parseQuantizeLogLine(line: string): QuantizeLogEvent | null {
  let m = TENSOR.exec(line);
  if (m) return { kind: "tensor", index: Number(m[1]), total: Number(m[2]), name: m[3]! };
  m = FALLBACK.exec(line);
  if (m) return { kind: "fallback", name: m[1]! };
  m = FALLBACK_COUNT.exec(line);
  if (m) return { kind: "fallback-count", count: Number(m[1]), total: Number(m[2]) };
  m = SIZE.exec(line);
  if (m) return { kind: "size", which: m[1] as "model" | "quant", mib: Number(m[2]) };
  m = FAILURE.exec(line);
  if (m) return { kind: "failure", reason: m[1]!.trim() };
  return null;
}

/** Why a quantization failed, as llmos names it (the daemon maps each to an error code). */
export type QuantizeFailureKind = "imatrix_required" | "imatrix_mismatch" | "requantize_not_allowed" | "failed";

/** Classifies llama.cpp's failure reason (the text after "failed to quantize: "). */
export function classifyQuantizeFailure(reason: string): QuantizeFailureKind {
  if (/requires an imatrix|Missing importance matrix/i.test(reason)) return "imatrix_required";
  if (/imatrix size \d+ is different|imatrix contains non-finite/i.test(reason)) return "imatrix_mismatch";
  if (/requantizing from type .* is disabled/i.test(reason)) return "requantize_not_allowed";
  return "failed";
}
