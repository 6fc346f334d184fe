/**
 * The Grafana dashboard and the metrics reference stay true to `/metrics`: every metric a dashboard query uses is
 * exported by a real daemon, and every llmos metric the daemon exports is documented in docs/metrics.md.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { REPO_ROOT } from "../support/paths.js";

interface Panel {
  title?: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

function queries(dashboard: { panels: Panel[]; templating?: { list: Array<{ definition?: string }> } }): string[] {
  const out: string[] = [];
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      for (const t of p.targets ?? []) if (t.expr) out.push(t.expr);
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  for (const v of dashboard.templating?.list ?? []) if (v.definition) out.push(v.definition);
  return out;
}

describe("Grafana dashboard and metrics reference", { timeout: 120_000 }, () => {
  let d: TestDaemon;
  let exported: Set<string>;
  before(async () => {
    d = await startTestDaemon();
    const res = await api(d, "POST", "/v1/completions", { model: "stories", prompt: "Once", max_tokens: 4 });
    assert.equal(res.status, 200);
    const text = (await api(d, "GET", "/metrics")).text;
    exported = new Set([...text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].map((m) => m[1]!));
  });
  after(() => d?.stop());

  it("uses only metrics the daemon exports", () => {
    const dashboard = JSON.parse(readFileSync(path.join(REPO_ROOT, "docs/grafana/llmos.json"), "utf8"));
    const exprs = queries(dashboard);
    assert.ok(exprs.length >= 20, `the dashboard has ${exprs.length} queries`);
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\bllmos_[a-z0-9_]+/g)].map((m) => m[0])));
    const missing = [...used].filter((name) => {
      const base = name.replace(/_(bucket|sum|count)$/, "");
      return !exported.has(name) && !exported.has(base);
    });
    assert.deepEqual(missing, [], "metrics the dashboard queries but /metrics lacks");
  });

  it("documents every llmos metric in docs/metrics.md", () => {
    const doc = readFileSync(path.join(REPO_ROOT, "docs/metrics.md"), "utf8");
    const undocumented = [...exported].filter((n) => !n.startsWith("llmos_process_") && !doc.includes(`\`${n}\``));
    assert.deepEqual(undocumented, []);
  });
});
