import { ERROR_CODES, type ErrorCode } from "@llmos/protocol";

/**
 * The one error type the server throws for anything a client should see.
 * `code` is stable (see @llmos/protocol), `status` follows from it, `details` carries numbers a client can act on.
 */
export class LlmosError extends Error {
  override readonly name = "LlmosError";
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = ERROR_CODES[code].status;
  }
}

/** True for errors produced by llmos code (as opposed to bugs). */
export function isLlmosError(error: unknown): error is LlmosError {
  return error instanceof LlmosError;
}
