/**
 * The slots of one context and the tokens each one's KV cells hold: which are free, which were used last, and
 * how a new prompt is placed on one (choose-slot.ts decides; this applies the decision through `KvSequenceOps`).
 * The cells of a finished request stay until another request needs its slot, so the next request of the same
 * conversation finds them. Synchronous: the owner calls it between decodes, never while one runs.
 */
import { chooseSlot, type SlotSnapshot } from "./choose-slot.js";

/** What the table needs from the KV memory, per sequence id. */
export interface KvSequenceOps {
  /** Drop the cells of `seq` at positions >= `from`. False when this memory cannot drop part of a sequence. */
  trim(seq: number, from: number): boolean;
  /** Drop every cell of `seq`. */
  clear(seq: number): void;
  /** Make `dst` hold `src`'s cells of positions [0, n) and nothing else. False when it could not. */
  copyPrefix(src: number, dst: number, n: number): boolean;
  /** Lowest and highest position `seq` holds, or null when it holds none. */
  span(seq: number): { min: number; max: number } | null;
}

export interface SlotTableOptions {
  slots: number;
  /** See ChooseSlotOptions. */
  copyCostTokens: number;
  minMatchFraction: number;
}

/** Where a new request runs and what it starts from. */
export interface Admission {
  seqId: number;
  /** Prompt tokens already in the sequence's cells (not evaluated again). */
  reused: number;
  /** The slot the reused prefix was copied from; null when the sequence kept its own cells. */
  copiedFrom: number | null;
}

/** One slot as `/api/ps` shows it. */
export interface SlotSummary {
  id: number;
  /** Tokens the slot's KV cells hold (a finished request's prompt and answer, or a running one's so far). */
  cachedTokens: number;
  busy: boolean;
}

interface Slot {
  readonly id: number;
  tokens: number[];
  busy: boolean;
  lastUsed: number;
}

export class SlotTable {
  private readonly slots: Slot[];
  private clock = 0;

  constructor(
    private readonly ops: KvSequenceOps,
    private readonly opts: SlotTableOptions,
  ) {
    this.slots = Array.from({ length: opts.slots }, (_, id) => ({ id, tokens: [], busy: false, lastUsed: 0 }));
  }

  /** Slots no request owns. */
  get free(): number {
    return this.slots.reduce((n, s) => n + (s.busy ? 0 : 1), 0);
  }

  /**
   * Place `prompt` on a free slot (null when none is free) and prepare its cells: keep or copy the reused prefix,
   * drop the rest. `reuse: false` starts from empty cells. A memory that cannot keep the prefix as planned (a
   * recurrent or sliding-window cache) gets the slot cleared, and the whole prompt is evaluated.
   */
  admit(prompt: ArrayLike<number>, reuse: boolean): Admission | null {
    const snapshot: SlotSnapshot[] = this.slots;
    const choice = chooseSlot(snapshot, prompt, {
      reuse,
      copyCostTokens: this.opts.copyCostTokens,
      minMatchFraction: this.opts.minMatchFraction,
    });
    if (!choice) return null;
    const slot = this.slots[choice.seqId]!;
    let reused = 0;
    let copiedFrom: number | null = null;
    if (choice.copyFrom !== null && choice.reuse > 0) {
      const donor = this.slots[choice.copyFrom]!;
      if (this.ops.copyPrefix(donor.id, slot.id, choice.reuse) && this.holdsPrefix(slot.id, choice.reuse)) {
        slot.tokens = donor.tokens.slice(0, choice.reuse);
        reused = choice.reuse;
        copiedFrom = donor.id;
      }
    } else if (choice.reuse > 0 && this.ops.trim(slot.id, choice.reuse) && this.holdsPrefix(slot.id, choice.reuse)) {
      slot.tokens.length = choice.reuse;
      reused = choice.reuse;
    }
    if (reused === 0) this.reset(slot);
    slot.busy = true;
    slot.lastUsed = ++this.clock;
    return { seqId: slot.id, reused, copiedFrom };
  }

  /** Record tokens a running sequence decoded into its cells (positions continue from what it holds). */
  append(seqId: number, tokens: ArrayLike<number>): void {
    const slot = this.slots[seqId]!;
    for (let i = 0; i < tokens.length; i++) slot.tokens.push(tokens[i]!);
  }

  /** The request on `seqId` ended: its cells stay for the next request. */
  release(seqId: number): void {
    const slot = this.slots[seqId]!;
    slot.busy = false;
    slot.lastUsed = ++this.clock;
  }

  /** Forget what `seqId` holds and drop its cells (after a failed decode they cannot be trusted). */
  invalidate(seqId: number): void {
    this.reset(this.slots[seqId]!);
  }

  /** Tokens `seqId` holds (a copy). */
  tokensOf(seqId: number): number[] {
    return [...this.slots[seqId]!.tokens];
  }

  summary(): SlotSummary[] {
    return this.slots.map((s) => ({ id: s.id, cachedTokens: s.tokens.length, busy: s.busy }));
  }

  /** The sequence holds exactly positions [0, n): what the planned reuse needs, checked against the memory. */
  private holdsPrefix(seqId: number, n: number): boolean {
    const span = this.ops.span(seqId);
    return span !== null && span.min === 0 && span.max === n - 1;
  }

  private reset(slot: Slot): void {
    this.ops.clear(slot.id);
    slot.tokens = [];
  }
}
