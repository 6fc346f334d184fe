import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  color: string;
  values: Array<number | null>;
}

/** A small time-series chart (uPlot) that redraws in place when its data change. */
export function Chart(props: { title: string; times: number[]; series: Series[]; height?: number; unit?: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = props.series.map((s) => s.label).join("|");

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(240, el.clientWidth),
      height: props.height ?? 140,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: "#8b949e", grid: { stroke: "#30363d" } },
        {
          stroke: "#8b949e",
          grid: { stroke: "#30363d" },
          size: 56,
          values: (_u, ticks) => ticks.map((t) => `${+t.toPrecision(3)}${props.unit ?? ""}`),
        },
      ],
      series: [{}, ...props.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: true }))],
    };
    const p = new uPlot(opts, data(props), el);
    plot.current = p;
    const resize = new ResizeObserver(() => p.setSize({ width: Math.max(240, el.clientWidth), height: opts.height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      p.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(data(props));
  });

  return (
    <div class="chart">
      <div class="chart-title">{props.title}</div>
      <div ref={box} />
    </div>
  );
}

function data(props: { times: number[]; series: Series[] }): uPlot.AlignedData {
  return [props.times.map((t) => t / 1000), ...props.series.map((s) => s.values)] as uPlot.AlignedData;
}
