export {
  MemoryUsageRepository,
  UsageStoreCorruptError,
  type StoredModelUsage,
  type UsageRepository,
} from "./repository.js";
export { SqliteUsageRepository } from "./sqlite-usage-repository.js";
