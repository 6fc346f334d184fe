import { isGgufError, readGguf, type GgufFile, type GgufLimits } from "@llmos/gguf";
import { LlmosError } from "../errors.js";

/**
 * Reads and validates a GGUF file's header (tensor bounds included).
 * @throws LlmosError `invalid_model_file` naming `what` and the GGUF problem; `not_found` when the file is missing.
 */
export async function checkGguf(file: string, what: string, limits?: Partial<GgufLimits>): Promise<GgufFile> {
  try {
    return await readGguf(file, limits);
  } catch (error) {
    if (isGgufError(error)) {
      const cause = (error as { cause?: NodeJS.ErrnoException }).cause;
      if (error.code === "io" && cause?.code === "ENOENT") {
        throw new LlmosError("not_found", `${what}: file not found`, undefined, { cause: error });
      }
      throw new LlmosError("invalid_model_file", `${what} is not a valid GGUF file: ${error.message}`, {
        ggufCode: error.code,
      }, { cause: error });
    }
    throw error;
  }
}
