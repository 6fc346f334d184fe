/**
 * Builds the scheduler's keep-alive policy and the usage model it learns into, for the composition root: the usage
 * records live in the daemon's database. When they cannot be read back (a corrupt store), the daemon logs a
 * warning, leaves the store as it is, keeps its learning in memory for this run, and the learned policies
 * (histogram, gdsf) fall back to `fixed`.
 */
import type { KeepPolicyName } from "@llmos/protocol";
import type { LlmosConfig } from "./config/config.js";
import { homePaths } from "./config/config.js";
import { systemClock } from "./scheduler/clock.js";
import { createPolicy } from "./scheduler/policies/index.js";
import type { SchedulingPolicy } from "./scheduler/policy.js";
import { UsageModel } from "./scheduler/usage/usage-model.js";
import type { Logger } from "./telemetry/logger.js";
import {
  MemoryUsageRepository,
  SqliteUsageRepository,
  UsageStoreCorruptError,
  type UsageRepository,
} from "./usage-store/index.js";

export interface KeepPolicySetup {
  policy: SchedulingPolicy;
  usage: UsageModel;
  note: { configured: KeepPolicyName; warning?: string };
  /** Writes what the usage model learned and closes its store. */
  close(): void;
}

export function openKeepPolicy(config: LlmosConfig, logger: Logger): KeepPolicySetup {
  const options = { dayMs: config.usageDayMs };
  const onWriteError = (err: unknown) => logger.warn({ err }, "writing the usage model failed");
  let repository: UsageRepository = new MemoryUsageRepository();
  let usage: UsageModel;
  let warning: string | undefined;
  try {
    repository = SqliteUsageRepository.open(homePaths(config.home).database);
    usage = UsageModel.open(repository, systemClock, options, onWriteError);
  } catch (error) {
    if (!(error instanceof UsageStoreCorruptError)) {
      repository.close();
      throw error;
    }
    // Keep the store for inspection; learn in memory for this run.
    repository.close();
    repository = new MemoryUsageRepository();
    usage = UsageModel.open(repository, systemClock, options, onWriteError);
    const learned = config.keepPolicy === "histogram" || config.keepPolicy === "gdsf";
    warning = `the usage store cannot be read (${error.message})${learned ? "; using the fixed keep-alive" : ""}`;
    logger.warn({ err: error, configured: config.keepPolicy }, warning);
  }
  const fallBack = warning !== undefined && (config.keepPolicy === "histogram" || config.keepPolicy === "gdsf");
  const policy = createPolicy(fallBack ? "fixed" : config.keepPolicy, { usage, keepAliveMs: config.keepAliveMs });
  let closed = false;
  return {
    policy,
    usage,
    note: { configured: config.keepPolicy, ...(warning ? { warning } : {}) },
    close: () => {
      if (closed) return;
      closed = true;
      usage.close();
      repository.close();
    },
  };
}
