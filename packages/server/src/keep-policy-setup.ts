/**
 * Builds the scheduler's keep-alive policy and the usage model it learns into, for the composition root: the usage
 * records live in the daemon's database, or in a cluster in the cluster's PostgreSQL (one record per model, shared
 * by the nodes). When they cannot be read back (a corrupt store), the daemon logs a warning, leaves the store as it
 * is, keeps its learning in memory for this run, and the learned policies (histogram, gdsf) fall back to `fixed`.
 */
import type pg from "pg";
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
  PostgresUsageRepository,
  SqliteUsageRepository,
  UsageStoreCorruptError,
  type UsageRepository,
} from "./usage-store/index.js";

/** How often a cluster node reads back what the other nodes learned. */
const CLUSTER_REFRESH_MS = 10_000;

export interface KeepPolicySetup {
  policy: SchedulingPolicy;
  usage: UsageModel;
  note: { configured: KeepPolicyName; warning?: string };
  /** Writes what the usage model learned and closes its store. */
  close(): Promise<void>;
}

/** `clusterPool`: the cluster's PostgreSQL pool (cluster mode); the usage records live there instead of in SQLite. */
export async function openKeepPolicy(
  config: LlmosConfig,
  logger: Logger,
  clusterPool?: pg.Pool,
): Promise<KeepPolicySetup> {
  const options = {
    dayMs: config.usageDayMs,
    ...(clusterPool ? { refreshMs: CLUSTER_REFRESH_MS } : {}),
  };
  const onWriteError = (err: unknown) => logger.warn({ err }, "writing the usage model failed");
  let repository: UsageRepository = new MemoryUsageRepository();
  let usage: UsageModel;
  let warning: string | undefined;
  try {
    repository = clusterPool
      ? await PostgresUsageRepository.open(clusterPool)
      : SqliteUsageRepository.open(homePaths(config.home).database);
    usage = await UsageModel.open(repository, systemClock, options, onWriteError);
  } catch (error) {
    await repository.close();
    if (!(error instanceof UsageStoreCorruptError)) throw error;
    // Keep the store for inspection; learn in memory for this run.
    repository = new MemoryUsageRepository();
    usage = await UsageModel.open(repository, systemClock, options, onWriteError);
    const learned = config.keepPolicy === "histogram" || config.keepPolicy === "gdsf";
    warning = `the usage store cannot be read (${error.message})${learned ? "; using the fixed keep-alive" : ""}`;
    logger.warn({ err: error, configured: config.keepPolicy }, warning);
  }
  const fallBack = warning !== undefined && (config.keepPolicy === "histogram" || config.keepPolicy === "gdsf");
  const policy = createPolicy(fallBack ? "fixed" : config.keepPolicy, { usage, keepAliveMs: config.keepAliveMs });
  let closing: Promise<void> | undefined;
  return {
    policy,
    usage,
    note: { configured: config.keepPolicy, ...(warning ? { warning } : {}) },
    close: () =>
      (closing ??= (async () => {
        await usage.close();
        await repository.close();
      })()),
  };
}
