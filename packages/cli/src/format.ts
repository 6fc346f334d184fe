import Table from "cli-table3";

/** `1234567` -> `1.2 MB` (decimal units, like `ollama list`). */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "-";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let i = 0;
  while (Math.abs(value) >= 1000 && i < units.length - 1) {
    value /= 1000;
    i++;
  }
  return i === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[i]}`;
}

/** Milliseconds -> `3 minutes` / `45 seconds` / `2 days`. */
export function formatSpan(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  const steps: Array<[number, string]> = [
    [86400, "day"],
    [3600, "hour"],
    [60, "minute"],
    [1, "second"],
  ];
  for (const [size, unit] of steps) {
    if (s >= size) {
      const n = Math.floor(s / size);
      return `${n} ${unit}${n === 1 ? "" : "s"}`;
    }
  }
  return "less than a second";
}

/** An ISO time relative to now: `3 minutes ago`, `in 4 minutes`, `Forever` for null. */
export function formatRelative(iso: string | null | undefined, now = Date.now()): string {
  if (iso === null) return "Forever";
  if (!iso) return "-";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const diff = t - now;
  if (Math.abs(diff) < 1000) return "just now";
  return diff < 0 ? `${formatSpan(diff)} ago` : `in ${formatSpan(diff)}`;
}

/** [0, 1, 2, 5] -> `0-2,5` (Linux CPU list syntax). */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(",");
}

/** A runner's CPU allotment: `2`, `1 on 0 (shared)`, or `idle` when it has no threads now. */
export function formatThreads(cpu: { threads: number; cpus: number[] | null; shared: boolean } | undefined): string {
  if (!cpu || cpu.threads === 0) return "idle";
  return `${cpu.threads}${cpu.cpus ? ` on ${formatCpuList(cpu.cpus)}` : ""}${cpu.shared ? " (shared)" : ""}`;
}

/** A borderless table like `ollama list`: header row, columns separated by spaces. */
export function renderTable(head: string[], rows: Array<Array<string | number>>): string {
  const table = new Table({
    head,
    chars: {
      top: "",
      "top-mid": "",
      "top-left": "",
      "top-right": "",
      bottom: "",
      "bottom-mid": "",
      "bottom-left": "",
      "bottom-right": "",
      left: "",
      "left-mid": "",
      mid: "",
      "mid-mid": "",
      right: "",
      "right-mid": "",
      middle: "   ",
    },
    style: { head: [], border: [], "padding-left": 0, "padding-right": 0 },
  });
  for (const row of rows) table.push(row.map(String));
  return table
    .toString()
    .split("\n")
    .map((l) => l.trimEnd())
    .join("\n");
}

/** Short digest for tables: `sha256:abcdef...` -> `abcdef012345`. */
export function shortDigest(digest: string | undefined): string {
  return (digest ?? "").replace(/^sha256:/, "").slice(0, 12);
}

/** `30d`, `12h`, `90m`, `45s` -> milliseconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$/.exec(value.trim());
  if (!m) throw new Error(`invalid duration "${value}": use a number with s, m, h, d or w (e.g. 30d)`);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[(m[2] ?? "s") as "s"];
  return Math.round(Number(m[1]) * factor);
}

/** `--since` value: an ISO time, or a duration meaning "that long ago". */
export function parseSince(value: string, now = Date.now()): string {
  if (/^\d+(?:\.\d+)?(ms|s|m|h|d|w)$/.test(value.trim())) return new Date(now - parseDuration(value)).toISOString();
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new Error(`invalid --since "${value}": use an ISO time or a duration such as 1h`);
  return new Date(t).toISOString();
}
