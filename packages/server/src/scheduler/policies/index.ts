/**
 * The keep-alive and eviction policies `LLMOS_KEEP_POLICY` chooses from. All implement `SchedulingPolicy`
 * (policy.ts) and are used by the daemon's scheduler and the benchmark's simulator alike.
 */
import type { KeepPolicyName } from "@llmos/protocol";
import { FixedKeepAlivePolicy, type SchedulingPolicy } from "../policy.js";
import type { UsageModel } from "../usage/usage-model.js";
import { GdsfPolicy } from "./gdsf.js";
import { HistogramPolicy, type HistogramPolicyOptions } from "./histogram.js";
import { LruPolicy } from "./lru.js";

export { GdsfPolicy } from "./gdsf.js";
export { HistogramPolicy, type HistogramPolicyOptions, type KeepPlan } from "./histogram.js";
export { LruPolicy } from "./lru.js";

export { KEEP_POLICY_NAMES, type KeepPolicyName } from "@llmos/protocol";

/**
 * The policy called `name`. `usage` is the learned usage model (gdsf reads load costs from it, histogram its
 * idle-time histograms); `keepAliveMs` the configured keep-alive (fixed's, and histogram's fallback and reference).
 */
export function createPolicy(
  name: KeepPolicyName,
  o: { usage: UsageModel; keepAliveMs: number; histogram?: Partial<HistogramPolicyOptions> },
): SchedulingPolicy {
  switch (name) {
    case "fixed":
      return new FixedKeepAlivePolicy();
    case "lru":
      return new LruPolicy();
    case "gdsf":
      return new GdsfPolicy(o.usage);
    case "histogram":
      return new HistogramPolicy(o.usage, { keepAliveMs: o.keepAliveMs, ...o.histogram });
  }
}
