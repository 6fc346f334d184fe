/** The engine and sandbox tests run with, in a module of their own (a runner started by hand needs no daemon code). */
import type { LlmosConfig } from "../../src/config/config.js";

/** The engine tests run on: the default (llama-ffi) unless LLMOS_ENGINE says otherwise. */
export const TEST_ENGINE: LlmosConfig["engine"] =
  (process.env.LLMOS_ENGINE as LlmosConfig["engine"] | undefined) ?? "llama-ffi";

/** The runner sandbox tests run with: the default (auto) unless LLMOS_SANDBOX says otherwise (CI's second pass). */
export const TEST_SANDBOX: LlmosConfig["sandbox"] =
  (process.env.LLMOS_SANDBOX as LlmosConfig["sandbox"] | undefined) ?? "auto";
