/**
 * The file types a model can be quantized to, as `llama-quantize` of the pinned release offers them
 * (`tools/quantize/quantize.cpp` QUANT_OPTIONS), with the ones that need an importance matrix
 * (`src/llama-quant.cpp` tensor_requires_imatrix: IQ1_S/IQ1_M, IQ2_XXS/IQ2_XS/IQ2_S, IQ3_XXS, and Q2_K inside a
 * Q2_K_S file; IQ2_M's default tensor type is IQ2_S).
 */

/** One quantization target. */
export interface QuantizeTarget {
  /** The name users type, e.g. "Q4_K_M". */
  readonly name: string;
  /** llama.cpp's file type (`general.file_type`, `enum llama_ftype`). */
  readonly fileType: number;
  /** Refused without an importance matrix. */
  readonly requiresImatrix: boolean;
  /** What llama-quantize says about it. */
  readonly description: string;
}

const T = (name: string, fileType: number, description: string, requiresImatrix = false): QuantizeTarget =>
  Object.freeze({ name, fileType, requiresImatrix, description });

/** Every target, in llama-quantize's order. */
export const QUANTIZE_TARGETS: readonly QuantizeTarget[] = Object.freeze([
  T("Q4_0", 2, "4.34G, +0.4685 ppl @ Llama-3-8B"),
  T("Q4_1", 3, "4.78G, +0.4511 ppl @ Llama-3-8B"),
  T("Q5_0", 8, "5.21G, +0.1316 ppl @ Llama-3-8B"),
  T("Q5_1", 9, "5.65G, +0.1062 ppl @ Llama-3-8B"),
  T("IQ2_XXS", 19, "2.06 bpw quantization", true),
  T("IQ2_XS", 20, "2.31 bpw quantization", true),
  T("IQ2_S", 28, "2.5 bpw quantization", true),
  T("IQ2_M", 29, "2.7 bpw quantization", true),
  T("IQ1_S", 24, "1.56 bpw quantization", true),
  T("IQ1_M", 31, "1.75 bpw quantization", true),
  T("TQ1_0", 36, "1.69 bpw ternarization"),
  T("TQ2_0", 37, "2.06 bpw ternarization"),
  T("Q2_K", 10, "2.96G, +3.5199 ppl @ Llama-3-8B"),
  T("Q2_K_S", 21, "2.96G, +3.1836 ppl @ Llama-3-8B", true),
  T("IQ3_XXS", 23, "3.06 bpw quantization", true),
  T("IQ3_S", 26, "3.44 bpw quantization"),
  T("IQ3_M", 27, "3.66 bpw quantization mix"),
  T("IQ3_XS", 22, "3.3 bpw quantization"),
  T("Q3_K_S", 11, "3.41G, +1.6321 ppl @ Llama-3-8B"),
  T("Q3_K_M", 12, "3.74G, +0.6569 ppl @ Llama-3-8B"),
  T("Q3_K_L", 13, "4.03G, +0.5562 ppl @ Llama-3-8B"),
  T("IQ4_NL", 25, "4.50 bpw non-linear quantization"),
  T("IQ4_XS", 30, "4.25 bpw non-linear quantization"),
  T("Q4_K_S", 14, "4.37G, +0.2689 ppl @ Llama-3-8B"),
  T("Q4_K_M", 15, "4.58G, +0.1754 ppl @ Llama-3-8B"),
  T("Q5_K_S", 16, "5.21G, +0.1049 ppl @ Llama-3-8B"),
  T("Q5_K_M", 17, "5.33G, +0.0569 ppl @ Llama-3-8B"),
  T("Q6_K", 18, "6.14G, +0.0217 ppl @ Llama-3-8B"),
  T("Q8_0", 7, "7.96G, +0.0026 ppl @ Llama-3-8B"),
  T("F16", 1, "14.00G, +0.0020 ppl @ Mistral-7B"),
  T("BF16", 32, "14.00G, -0.0050 ppl @ Mistral-7B"),
  T("F32", 0, "26.00G @ 7B"),
]);

/** llama-quantize's aliases. */
const ALIASES: Readonly<Record<string, string>> = { Q3_K: "Q3_K_M", Q4_K: "Q4_K_M", Q5_K: "Q5_K_M" };

/** The target named `name` (case-insensitive, llama-quantize's aliases Q3_K/Q4_K/Q5_K accepted), or undefined. */
export function quantizeTarget(name: string): QuantizeTarget | undefined {
  const upper = name.trim().toUpperCase();
  const canonical = ALIASES[upper] ?? upper;
  return QUANTIZE_TARGETS.find((t) => t.name === canonical);
}

/** The names users may give, for error messages and help. */
export function quantizeTargetNames(): string[] {
  return QUANTIZE_TARGETS.map((t) => t.name);
}
