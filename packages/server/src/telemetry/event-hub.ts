import type { DaemonEvent, DaemonEventMap, DaemonEventType } from "@llmos/protocol";

/** A subscriber's callback; it must not throw (errors are swallowed so one bad subscriber cannot hurt publishers). */
export type EventListener = (event: DaemonEvent) => void;

/** What `subscribe` hands back: events missed since `Last-Event-ID` and a way to stop listening. */
export interface Subscription {
  /** Buffered events after the given id, oldest first (empty when none was given). */
  readonly replay: DaemonEvent[];
  /** True when the given id is older than the buffer holds: some events are lost, take a fresh snapshot. */
  readonly gap: boolean;
  close(): void;
}

/**
 * Change events of the daemon (models loaded and unloaded, requests queued, started and finished, log lines),
 * numbered in order and kept in a ring buffer so an event-stream client can resume with `Last-Event-ID`.
 * The scheduler and inference publish with one-line calls; publishing costs an object and an array slot when
 * nobody listens, so the hot path does not depend on whether a dashboard is open.
 */
export class EventHub {
  private nextId = 1;
  private readonly buffer: DaemonEvent[] = [];
  private readonly listeners = new Set<EventListener>();

  /** @param capacity events kept for resuming (default 2000). */
  constructor(private readonly capacity = 2000) {}

  /** The id the next event will get (so a snapshot can say where change events pick up). */
  get lastId(): number {
    return this.nextId - 1;
  }

  get subscriberCount(): number {
    return this.listeners.size;
  }

  /** Publishes a change event (snapshots are built per client by the event route, not published). */
  publish<K extends Exclude<DaemonEventType, "snapshot">>(type: K, data: DaemonEventMap[K]): void {
    const event = { id: this.nextId++, type, data } as DaemonEvent;
    this.buffer.push(event);
    // Trimmed in batches, so a full buffer does not shift every slot on each event.
    if (this.buffer.length >= this.capacity * 1.25) this.buffer.splice(0, this.buffer.length - this.capacity);
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        /* a subscriber's failure is its own */
      }
    }
  }

  /** Listens from now on; with `lastEventId`, first replays what came after it (if still buffered). */
  subscribe(listener: EventListener, lastEventId?: number): Subscription {
    let replay: DaemonEvent[] = [];
    let gap = false;
    if (lastEventId !== undefined && lastEventId < this.lastId) {
      const oldest = this.buffer[0]?.id ?? this.nextId;
      gap = lastEventId + 1 < oldest;
      replay = this.buffer.filter((e) => e.id > lastEventId);
    }
    this.listeners.add(listener);
    return { replay, gap, close: () => void this.listeners.delete(listener) };
  }
}
