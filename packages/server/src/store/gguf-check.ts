import {
  isGgufError,
  metadataForDisplay,
  readGguf,
  summarizeGguf,
  validateModelMetadata,
  type GgufDisplayValue,
  type GgufLimits,
  type GgufSummary,
} from "@llmos/gguf";
import { LlmosError } from "../errors.js";

/** What the store learns from checking a GGUF file. */
export interface GgufInspection {
  summary: GgufSummary;
  /** Metadata for display (`/api/show`), when asked for: large arrays and, past 1 MiB of text, long strings elided. */
  metadata?: Record<string, GgufDisplayValue>;
}

/** Characters of metadata strings shown before long ones are elided. */
const DISPLAY_STRING_CHARS = 1024 * 1024;

/**
 * Reads and validates a GGUF file's header (tensor bounds included) and, for models (anything that is not a LoRA
 * adapter), the hyper-parameters and tokenizer values that would abort llama.cpp's whole process on load.
 * Runs in the GGUF worker (see GgufChecker), never on the daemon's event loop.
 * @throws LlmosError `invalid_model_file` naming `what` and the GGUF problem; `not_found` when the file is missing.
 */
export async function inspectGguf(
  file: string,
  what: string,
  limits: Partial<GgufLimits>,
  display: boolean,
): Promise<GgufInspection> {
  try {
    const gguf = await readGguf(file, limits);
    if (gguf.metadata["general.type"] !== "adapter") validateModelMetadata(gguf);
    const summary = summarizeGguf(gguf);
    return display ? { summary, metadata: metadataForDisplay(gguf, 16, DISPLAY_STRING_CHARS) } : { summary };
  } catch (error) {
    if (isGgufError(error)) {
      const cause = (error as { cause?: NodeJS.ErrnoException }).cause;
      if (error.code === "io" && cause?.code === "ENOENT") {
        throw new LlmosError("not_found", `${what}: file not found`, undefined, { cause: error });
      }
      throw new LlmosError(
        "invalid_model_file",
        `${what} is not a valid GGUF file: ${error.message}`,
        {
          ggufCode: error.code,
        },
        { cause: error },
      );
    }
    throw error;
  }
}
