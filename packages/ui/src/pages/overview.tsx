import { Chart } from "../chart";
import { bytes, number, percent, seconds } from "../format";
import { points, snapshot } from "../live";

/** Node memory and CPU, and the live request figures of the last minutes. */
export function Overview() {
  const s = snapshot.value;
  const pts = points.value;
  if (!s) return <p class="muted">Waiting for the first snapshot…</p>;
  const p = s.point;
  const times = pts.map((x) => x.t);
  const budget = s.node.budget;
  const free = Math.max(0, budget.budgetBytes - budget.reservedBytes);
  return (
    <section>
      <div class="cards">
        <Card label="tokens/s" value={number(p.tokensPerSecond, 1)} testid="tps" />
        <Card label="running" value={String(p.running)} testid="running" />
        <Card label="queued" value={String(p.queued)} testid="queued" />
        <Card label="TTFT p50 / p95" value={`${seconds(p.ttftP50)} / ${seconds(p.ttftP95)}`} />
        <Card label="errors (1 min)" value={percent(p.errorRate)} />
        <Card label="CPU" value={`${percent(p.cpuBusy)} of ${s.node.cpu.cores} cores`} />
      </div>
      <h3>Memory</h3>
      <div class="membar" role="img" aria-label="memory budget">
        {s.models.map((m) => (
          <div
            class="seg"
            title={m.name}
            style={{ flexGrow: Math.max(1, m.memory.estimatedBytes), flexBasis: 0 }}
            key={m.name}
          >
            {m.name}
          </div>
        ))}
        <div class="seg free" style={{ flexGrow: Math.max(1, free), flexBasis: 0 }}>
          free {bytes(free)}
        </div>
      </div>
      <table class="grid">
        <tbody>
          <tr>
            <th>Budget</th>
            <td>{bytes(budget.budgetBytes)}</td>
            <th>Reserved by models</th>
            <td>{bytes(budget.reservedBytes)}</td>
            <th>RAM available / total</th>
            <td>
              {bytes(s.node.memory.availableBytes)} / {bytes(s.node.memory.totalBytes)}
            </td>
          </tr>
          {s.models.map((m) => (
            <tr key={m.name}>
              <td colSpan={2}>{m.name}</td>
              <td>estimate {bytes(m.memory.estimatedBytes)}</td>
              <td>measured {bytes(m.memory.rssBytes)}</td>
              <td colSpan={2}>{m.memory.vramBytes ? `VRAM ${bytes(m.memory.vramBytes)}` : "CPU"}</td>
            </tr>
          ))}
          {s.node.gpus.map((g) => (
            <tr key={g.name}>
              <td colSpan={2}>{g.name}</td>
              <td colSpan={4}>
                VRAM free {bytes(g.freeVramBytes)} of {bytes(g.totalVramBytes)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="charts">
        <Chart
          title="Tokens per second"
          times={times}
          series={[
            { label: "generated", color: "#58a6ff", values: pts.map((x) => x.tokensPerSecond) },
            { label: "prompt", color: "#8b949e", values: pts.map((x) => x.promptTokensPerSecond) },
          ]}
        />
        <Chart
          title="Requests running and queued"
          times={times}
          series={[
            { label: "running", color: "#3fb950", values: pts.map((x) => x.running) },
            { label: "queued", color: "#d29922", values: pts.map((x) => x.queued) },
          ]}
        />
        <Chart
          title="Time to first token (1 min window)"
          unit="s"
          times={times}
          series={[
            { label: "p50", color: "#58a6ff", values: pts.map((x) => x.ttftP50) },
            { label: "p95", color: "#f778ba", values: pts.map((x) => x.ttftP95) },
          ]}
        />
        <Chart
          title="Error rate and CPU"
          times={times}
          series={[
            { label: "5xx share", color: "#f85149", values: pts.map((x) => x.errorRate) },
            { label: "CPU busy", color: "#a371f7", values: pts.map((x) => x.cpuBusy) },
          ]}
        />
      </div>
    </section>
  );
}

function Card(props: { label: string; value: string; testid?: string }) {
  return (
    <div class="card">
      <div class="card-value" data-testid={props.testid}>
        {props.value}
      </div>
      <div class="card-label">{props.label}</div>
    </div>
  );
}
