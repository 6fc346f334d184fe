export {
  MemoryUsageRepository,
  UsageStoreCorruptError,
  type StoredModelUsage,
  type UsageMerge,
  type UsageRepository,
} from "./repository.js";
export { SqliteUsageRepository } from "./sqlite-usage-repository.js";
export { PostgresUsageRepository } from "./postgres-usage-repository.js";
