export { LlamaFfiEngine, type LlamaFfiEngineOptions } from "./llama-ffi-engine.js";
export { LlamaFfiModel } from "./llama-ffi-model.js";
export type { DecodeMode } from "./batch-scheduler.js";
export type { EngineLogger, EngineLogLevel } from "./native-runtime.js";
export type { CpuBackendInfo, CpuBackendManifest } from "./cpu-backend.js";
