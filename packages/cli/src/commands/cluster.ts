import type { Command } from "commander";
import type { ClusterNodeInfo, ClusterStatus } from "llmos";
import type { CliContext } from "../context.js";
import { formatBytes, renderTable } from "../format.js";

/** `llmos cluster status|drain|resume`: the nodes of the cluster the daemon belongs to (admin key). */
export function registerCluster(program: Command, ctx: CliContext): void {
  const cluster = program.command("cluster").description("nodes of the cluster (cluster mode)");
  cluster
    .command("status")
    .description("list the nodes: state, memory, models, queue; models this node is copying from peers")
    .action(async (_opts: unknown, cmd: Command) => {
      const status = await (await ctx.client()).request<ClusterStatus>({ method: "GET", path: "/api/cluster" });
      if (ctx.json(cmd)) return ctx.printJson(status);
      ctx.print(
        renderTable(
          ["NODE", "STATE", "HEALTHY", "EPOCH", "HEARTBEAT", "MEMORY", "MODELS", "QUEUED", "URL"],
          status.nodes.map((n) => [
            n.name + (n.name === status.self ? " *" : ""),
            n.state,
            n.healthy ? "yes" : "no",
            n.epoch,
            `${(n.heartbeatAgeMs / 1000).toFixed(1)}s ago`,
            `${formatBytes(n.memory.reservedBytes)} / ${formatBytes(n.memory.budgetBytes)}`,
            n.models.map((m) => `${m.name} ${m.busy}/${m.slots}`).join(", ") || "-",
            n.queued,
            n.url,
          ]),
        ),
      );
      if (status.models.length > 0)
        ctx.print(
          "\n" +
            renderTable(
              ["MODEL", "SIZE", "MEMORY NEED", "STORED ON", "LOADED ON"],
              status.models.map((m) => [
                m.name,
                formatBytes(m.sizeBytes),
                // The scheduler's estimate with the default context and slots (and with the smallest context).
                m.estimatedBytes > 0 ? `${formatBytes(m.estimatedBytes)} (min ${formatBytes(m.minimumBytes)})` : "-",
                m.storedOn.join(", ") || "-",
                m.loadedOn.join(", ") || "-",
              ]),
            ),
        );
      for (const t of status.transfers ?? []) {
        const share = t.totalBytes > 0 ? ` (${Math.floor((100 * t.completedBytes) / t.totalBytes)}%)` : "";
        ctx.print(
          `${status.self} is copying ${t.model} from ${t.peer ?? "a peer"}: ` +
            `${formatBytes(t.completedBytes)} / ${formatBytes(t.totalBytes)}${share}`,
        );
      }
      if (!status.database) ctx.info("the cluster database is unreachable from this node: the view may be stale");
    });
  for (const [action, what] of [
    ["drain", "stop sending new work to a node; what runs there finishes"],
    ["resume", "let a drained node take work again"],
  ] as const) {
    cluster
      .command(`${action} <node>`)
      .description(what)
      .action(async (node: string, _opts: unknown, cmd: Command) => {
        const info = await (
          await ctx.client()
        ).request<ClusterNodeInfo>({
          method: "POST",
          path: `/api/cluster/nodes/${encodeURIComponent(node)}/${action}`,
        });
        if (ctx.json(cmd)) return ctx.printJson(info);
        ctx.print(`${info.name}: ${info.state}`);
      });
  }
}
