/**
 * llmos: TypeScript SDK for the llmos daemon. Zero runtime dependencies beyond `fetch`.
 * @packageDocumentation
 */
export { Client, type ClientOptions, type ListOptions } from "./client.js";
export { Model } from "./model.js";
export { KeysApi } from "./keys.js";
export { JobsApi, jobFinished } from "./jobs.js";
export { TextStream } from "./text-stream.js";
export { ProgressStream } from "./progress-stream.js";
export { resolveHost, DEFAULT_HOST, DEFAULT_PORT } from "./host.js";
export type { FetchLike, RequestSpec } from "./transport.js";
export * from "./errors.js";
export type * from "./types.js";
export type {
  ActiveRequest,
  DaemonEvent,
  DaemonSnapshot,
  LivePoint,
  ApiKeyInfo,
  AuditEntry,
  AuditResult,
  CreatedKey,
  DiskUsage,
  ErrorCode,
  KeyScope,
  UsageRow,
  VerifyReport,
  LoadedModel,
  ModelDetails,
  ModelInfo,
  ModelOrigin,
  ModelSummary,
  PsResponse,
  PushModelResult,
  RunnerCpu,
  RunnerOomRecord,
  RunnerSandboxStatus,
  RunnerStats,
  EvalReport,
  EvalRequest,
  ImatrixReport,
  ImatrixRequest,
  JobState,
  JobView,
  KvCacheType,
  QuantizationInfo,
  SandboxSupport,
  ClusterNodeInfo,
  ClusterNodeModel,
  ClusterNodeState,
  ClusterModelInfo,
  ClusterStatus,
  ClusterBlobTransfer,
} from "@llmos/protocol";
