import { useEffect, useState } from "preact/hooks";
import type { ModelSummary, RunnerCpu } from "@llmos/protocol";
import { api, headers } from "../api";
import { bytes, duration, number, percent } from "../format";
import { modelEvents, snapshot } from "../live";
import { ActionError, useAction } from "../action";

/** The store's models and the loaded ones, with load / unload / pin / remove for keys allowed to. */
export function Models() {
  const s = snapshot.value;
  const [store, setStore] = useState<ModelSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [cache, setCache] = useState<Record<string, { hits: number; lookups: number }>>({});
  const action = useAction();
  const access = s?.access;
  const tick = modelEvents.value;

  useEffect(() => {
    if (!access?.modelsRead) return;
    api<{ models: ModelSummary[] }>("GET", "/api/models")
      .then((r) => setStore(r.models))
      .catch((e: Error) => setError(e.message));
    if (access.metrics) void promptCache().then(setCache, () => undefined);
  }, [tick, access?.modelsRead, action.done]);

  if (!s) return <p class="muted">Waiting for the first snapshot…</p>;
  if (!s.access.modelsRead) return <p class="muted">This key may not list models (it lacks models:read).</p>;
  const loaded = new Map(s.models.map((m) => [m.name, m]));
  const canLoad = s.access.modelsRead;
  const now = s.time;
  return (
    <section>
      <ActionError action={action} />
      {error && <p class="error">{error}</p>}
      <h3>
        Loaded{" "}
        {s.policy && (
          <span class="muted" data-testid="keep-policy">
            (keep-alive policy: {s.policy.name}
            {s.policy.warning ? ` - ${s.policy.warning}` : ""})
          </span>
        )}
      </h3>
      <table class="grid" data-testid="loaded-models">
        <thead>
          <tr>
            <th>Model</th>
            <th>State</th>
            <th>Memory est. / measured</th>
            <th>Slots busy</th>
            <th>Queued</th>
            <th title="Decode threads the scheduler gives the runner now (and its CPUs when pinned)">CPU</th>
            <th title="Decode steps that ran while other models were busy on the same cores">Contended steps</th>
            <th>Prompt cache hits</th>
            <th>Loaded for</th>
            <th>Unloads in</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {s.models.length === 0 && (
            <tr>
              <td colSpan={11} class="muted">
                No model is loaded.
              </td>
            </tr>
          )}
          {s.models.map((m) => {
            const c = cache[m.name];
            return (
              <tr key={m.name} data-model={m.name}>
                <td>
                  {m.name}
                  {m.pinned ? " (pinned)" : ""}
                </td>
                <td>{m.state}</td>
                <td>
                  {bytes(m.memory.estimatedBytes)} / {bytes(m.memory.rssBytes)}
                </td>
                <td>
                  {m.slotsBusy}/{m.slots}
                </td>
                <td>{m.queued}</td>
                <td data-testid="cpu">{cpuText(m.cpu)}</td>
                <td data-testid="contended">
                  {number(m.stats.contendedBatches)} / {number(m.stats.decodeBatches)}
                </td>
                <td>{c && c.lookups > 0 ? percent(c.hits / c.lookups) : "—"}</td>
                <td data-testid="loaded-for">{m.loadedFor ?? "request"}</td>
                <td title={keepTitle(m)}>{unloadsIn(m, now)}</td>
                <td class="actions">
                  {canLoad && (
                    <button onClick={() => action.run(() => api("POST", `/api/models/${enc(m.name)}/unload`))}>
                      Unload
                    </button>
                  )}
                  {canLoad && (
                    <button
                      onClick={() =>
                        action.run(() => api("POST", `/api/models/${enc(m.name)}/load`, { pinned: !m.pinned }))
                      }
                    >
                      {m.pinned ? "Unpin" : "Pin"}
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <h3>Store</h3>
      <table class="grid" data-testid="store-models">
        <thead>
          <tr>
            <th>Model</th>
            <th>Size</th>
            <th>Quantization</th>
            <th>Parameters</th>
            <th>Context</th>
            <th>Last used</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(store ?? []).map((m) => {
            const l = loaded.get(m.name);
            const lastUsed = s.lastUsed[m.name] ?? (l as { lastUsedAt?: string } | undefined)?.lastUsedAt;
            return (
              <tr key={m.name} data-model={m.name}>
                <td>{m.name}</td>
                <td>{bytes(m.size)}</td>
                <td>{m.details.quantization}</td>
                <td>{m.details.parameterSize}</td>
                <td>{number(m.details.contextLength)}</td>
                <td>{lastUsed ? new Date(lastUsed).toLocaleString() : "—"}</td>
                <td class="actions">
                  {canLoad && !l && (
                    <button onClick={() => action.run(() => api("POST", `/api/models/${enc(m.name)}/load`, {}))}>
                      Load
                    </button>
                  )}
                  {s.access.modelsWrite && (
                    <button
                      class="danger"
                      onClick={() =>
                        confirm(`Remove ${m.name} from the store?`) &&
                        action.run(() => api("DELETE", `/api/models/${enc(m.name)}`))
                      }
                    >
                      Remove
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

/** "2 threads, CPUs 0-1, shared", or "idle" when the runner has no threads now. */
function cpuText(cpu: RunnerCpu | undefined): string {
  if (!cpu || cpu.threads === 0) return "idle";
  const parts = [`${cpu.threads} thread${cpu.threads === 1 ? "" : "s"}`];
  if (cpu.cpus) parts.push(`CPUs ${cpuList(cpu.cpus)}`);
  if (cpu.shared) parts.push("shared");
  return parts.join(", ");
}

/** [0, 1, 2, 5] -> "0-2,5". */
function cpuList(cpus: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < cpus.length;) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    out.push(i === j ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return out.join(",");
}

function enc(name: string): string {
  return encodeURIComponent(name);
}

/** Prompt-cache hits per model from `/metrics` (the same counter Grafana charts). */
async function promptCache(): Promise<Record<string, { hits: number; lookups: number }>> {
  const res = await fetch("/metrics", { headers: headers(), credentials: "omit" });
  if (!res.ok) return {};
  const out: Record<string, { hits: number; lookups: number }> = {};
  const re = /^llmos_prompt_cache_lookups_total\{model="((?:[^"\\]|\\.)*)",result="(hit|miss)"\} (\S+)$/gm;
  for (const m of (await res.text()).matchAll(re)) {
    const name = m[1]!.replace(/\\(.)/g, "$1");
    const e = (out[name] ??= { hits: 0, lookups: 0 });
    const n = Number(m[3]);
    e.lookups += n;
    if (m[2] === "hit") e.hits += n;
  }
  return out;
}

/** Who decides when the model goes, and the policy's reason (shown on hover). */
function keepTitle(m: { keptBy?: string; keepReason?: string }): string {
  if (m.keptBy === "pin") return "pinned: never unloaded";
  if (m.keptBy === "keep_alive") return "the keep_alive a request or load call gave";
  return m.keepReason ?? m.keptBy ?? "";
}

/** The keep-alive countdown: never for pinned or keep_alive=-1 models, the time left once idle, else "when idle". */
function unloadsIn(m: { pinned: boolean; expiresAt: string | null; keepAliveMs?: number }, now: number): string {
  if (m.pinned || (m.keepAliveMs ?? 0) < 0) return "never";
  if (m.expiresAt) return duration(Math.max(0, Date.parse(m.expiresAt) - now));
  return "when idle";
}
