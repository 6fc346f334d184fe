import { isGgufError, readGguf, validateModelMetadata, type GgufFile, type GgufLimits } from "@llmos/gguf";
import { LlmosError } from "../errors.js";

/**
 * Reads and validates a GGUF file's header (tensor bounds included) and, for models (anything that is not a LoRA
 * adapter), the hyper-parameters and tokenizer values that would abort llama.cpp's whole process on load.
 * @throws LlmosError `invalid_model_file` naming `what` and the GGUF problem; `not_found` when the file is missing.
 */
export async function checkGguf(file: string, what: string, limits?: Partial<GgufLimits>): Promise<GgufFile> {
  try {
    const gguf = await readGguf(file, limits);
    if (gguf.metadata["general.type"] !== "adapter") validateModelMetadata(gguf);
    return gguf;
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
