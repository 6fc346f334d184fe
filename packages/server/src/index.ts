/** @llmos/server: the llmos daemon. */
export { startDaemon, VERSION, type Daemon, type DaemonOptions } from "./daemon.js";
export { loadConfig, parseHostUrl, parseDurationMs, parseBytes, type ConfigFlags } from "./config/load.js";
export { defaultConfig, homePaths, DEFAULT_PORT, type LlmosConfig } from "./config/config.js";
export { cpuBackendDir } from "./config/config.js";
export {
  buildCpuBackend,
  probeCpuBackend,
  CpuBackendBuildError,
  type BuildCpuBackendOptions,
  type BuildCpuBackendResult,
  type CpuBackendBuildProgress,
} from "./engine/llama-ffi/cpu-backend-build.js";
