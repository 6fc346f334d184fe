import { signal } from "@preact/signals";
import type { ActiveRequest, DaemonEventMap, DaemonSnapshot, LivePoint, LogEvent } from "@llmos/protocol";
import { headers, readSse } from "./api";

/** The latest snapshot (null until the first arrives). */
export const snapshot = signal<DaemonSnapshot | null>(null);
/** Chart points, oldest first (ten minutes). */
export const points = signal<LivePoint[]>([]);
/** Requests in flight, by generation id (snapshots replace it, request events patch it). */
export const requests = signal<ActiveRequest[]>([]);
/** The live log tail (admins only), newest last, bounded. */
export const logs = signal<LogEvent[]>([]);
/** Connection state of the event stream, and why it failed. */
export const connection = signal<{ state: "connecting" | "open" | "closed" | "denied"; error?: string }>({
  state: "connecting",
});
/** Bumped on model events, so pages that list models refetch. */
export const modelEvents = signal(0);

const MAX_LOGS = 1000;
const POINTS_WINDOW_MS = 10 * 60_000;

let controller: AbortController | null = null;
let lastEventId: string | null = null;

/** Connects to `/api/events` and keeps the signals current; reconnects with `Last-Event-ID` after a drop. */
export function connect(): void {
  disconnect();
  lastEventId = null;
  snapshot.value = null;
  points.value = [];
  logs.value = [];
  const c = new AbortController();
  controller = c;
  void run(c);
}

export function disconnect(): void {
  controller?.abort();
  controller = null;
}

async function run(c: AbortController): Promise<void> {
  let delay = 500;
  while (!c.signal.aborted) {
    connection.value = { state: "connecting" };
    try {
      const res = await fetch("/api/events", {
        headers: headers(lastEventId ? { "last-event-id": lastEventId } : {}),
        signal: c.signal,
        credentials: "omit",
        cache: "no-store",
      });
      if (res.status === 401 || res.status === 403) {
        const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
        connection.value = { state: "denied", error: body.error?.message ?? res.statusText };
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      connection.value = { state: "open" };
      delay = 500;
      for await (const msg of readSse(res.body)) {
        if (msg.id) lastEventId = msg.id;
        apply(msg.event, JSON.parse(msg.data));
      }
    } catch (error) {
      if (c.signal.aborted) return;
      connection.value = { state: "closed", error: error instanceof Error ? error.message : String(error) };
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 5000);
  }
}

function apply(type: string, data: unknown): void {
  switch (type) {
    case "snapshot": {
      const s = data as DaemonSnapshot;
      snapshot.value = s;
      requests.value = s.requests;
      const base = s.history ?? points.value;
      const next = base.length && base[base.length - 1]!.t >= s.point.t ? base : [...base, s.point];
      points.value = next.filter((p) => p.t >= s.point.t - POINTS_WINDOW_MS);
      break;
    }
    case "request.queued":
    case "request.started": {
      const r = data as ActiveRequest;
      requests.value = [...requests.value.filter((x) => x.id !== r.id), r];
      break;
    }
    case "request.finished": {
      const r = data as DaemonEventMap["request.finished"];
      requests.value = requests.value.filter((x) => x.id !== r.id);
      break;
    }
    case "log": {
      const next = [...logs.value, data as LogEvent];
      logs.value = next.length > MAX_LOGS ? next.slice(next.length - MAX_LOGS) : next;
      break;
    }
    default:
      if (type.startsWith("model.")) {
        modelEvents.value++;
        applyModelEvent(type, data as { model: string });
      }
  }
}

/** Shows a model's new state at once, before the next snapshot brings the full picture. */
function applyModelEvent(type: string, data: { model: string }): void {
  const s = snapshot.value;
  if (!s) return;
  const others = s.models.filter((m) => m.name !== data.model);
  if (type === "model.unloaded" || type === "model.load_failed") snapshot.value = { ...s, models: others };
  else if (type === "model.loaded" || type === "model.loading") {
    const old = s.models.find((m) => m.name === data.model);
    const state = type === "model.loaded" ? "ready" : "loading";
    const model = old
      ? { ...old, state }
      : ({
          name: data.model,
          digest: "",
          runnerPid: null,
          state,
          contextSize: 0,
          slots: 0,
          slotsBusy: 0,
          queued: 0,
          pinned: false,
          expiresAt: null,
          memory: { estimatedBytes: 0, rssBytes: null, vramBytes: null },
          gpuLayers: 0,
          engine: "",
          cpuBackend: null,
          cpu: { threads: 0, cpus: null, shared: false, minThreads: 1, demand: 0, appliedAt: null },
          stats: {
            decodeBatches: 0,
            multiSequenceBatches: 0,
            maxSequencesInBatch: 0,
            tokensGenerated: 0,
            promptTokens: 0,
            contendedBatches: 0,
          },
        } as DaemonSnapshot["models"][number]);
    snapshot.value = { ...s, models: [...others, model as DaemonSnapshot["models"][number]] };
  }
}
