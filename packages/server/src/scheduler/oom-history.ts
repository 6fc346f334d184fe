/**
 * Runners the kernel stopped for going past their memory limit, and what each such model's next load is sized
 * at: its estimate was too low, so the next one starts from 1.5x the most it was allowed or was seen to use. Kept
 * for the daemon's lifetime (a restart estimates afresh).
 */
import type { RunnerOomRecord } from "@llmos/protocol";

/** How much a model's estimate grows after the kernel stopped its runner. */
export const OOM_RAISE_FACTOR = 1.5;
const KEPT = 20;

/** The estimate a model's next load starts from after an OOM kill (pure; see the file comment). */
export function raisedEstimate(o: {
  estimateBytes: number;
  limitBytes: number | null;
  peakBytes: number | null;
}): number {
  return Math.ceil(Math.max(o.estimateBytes, o.limitBytes ?? 0, o.peakBytes ?? 0) * OOM_RAISE_FACTOR);
}

export class OomHistory {
  private readonly floors = new Map<string, number>();
  private readonly records: RunnerOomRecord[] = [];

  /** Records an OOM kill of `model`'s runner and raises its next estimate; returns the record. */
  record(
    model: string,
    o: { estimateBytes: number; limitBytes: number | null; peakBytes: number | null },
    at: number,
  ): RunnerOomRecord {
    const next = Math.max(raisedEstimate(o), this.floors.get(model) ?? 0);
    this.floors.set(model, next);
    const record: RunnerOomRecord = {
      model,
      at: new Date(at).toISOString(),
      limitBytes: o.limitBytes,
      peakBytes: o.peakBytes,
      nextEstimateBytes: next,
    };
    this.records.unshift(record);
    this.records.length = Math.min(this.records.length, KEPT);
    return record;
  }

  /** The least estimate `model`'s next load may use (after an OOM kill), or undefined. */
  floorOf(model: string): number | undefined {
    return this.floors.get(model);
  }

  /** The latest OOM kills, newest first. */
  recent(): RunnerOomRecord[] {
    return [...this.records];
  }
}
