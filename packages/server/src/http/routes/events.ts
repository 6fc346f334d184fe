import type { DaemonEvent } from "@llmos/protocol";
import type { FastifyPluginAsync } from "fastify";
import type { HttpDeps } from "../deps.js";
import { liveAccessOf, visibleEvent } from "../live-access.js";
import { LiveSnapshots } from "../live-snapshot.js";

/** A client that lets this much unsent output pile up is disconnected; it resumes with `Last-Event-ID`. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * `GET /api/events`: the live event stream (Server-Sent Events) of the dashboard and `llmos top`. On connect: the
 * change events missed since `Last-Event-ID` (when given and still buffered), then a snapshot (with ten minutes of
 * chart history on a fresh connection, or when events were lost); after that, change events as they happen and a
 * snapshot every interval, which doubles as the keep-alive. What a caller sees follows its scopes
 * (see live-access.ts).
 */
export function eventRoutes(deps: HttpDeps): FastifyPluginAsync {
  const snapshots = new LiveSnapshots(deps);
  return async (app) => {
    app.get(
      "/api/events",
      {
        schema: {
          summary: "Live events (SSE): snapshots every interval plus model, request and log events; resumable",
          description:
            "Each message has `id` (send the last one back as `Last-Event-ID` to resume), `event` (snapshot, " +
            "model.loading, model.loaded, model.load_failed, model.unloaded, request.queued, request.started, " +
            "request.finished, log) and JSON `data`. Figures come from the same counters as /metrics.",
          tags: ["runtime"],
        },
        config: { scope: "metrics" },
      },
      async (request, reply) => {
        const access = liveAccessOf(request);
        const header = request.headers["last-event-id"];
        const lastEventId = typeof header === "string" && /^\d{1,15}$/.test(header) ? Number(header) : undefined;
        const raw = reply.raw;
        reply.hijack();
        raw.writeHead(200, {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache, no-store",
          "x-accel-buffering": "no",
          "x-request-id": String(request.id),
          "x-content-type-options": "nosniff",
        });
        let closed = false;
        const send = (event: DaemonEvent) => {
          if (closed) return;
          raw.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`);
          if (raw.writableLength > MAX_BUFFERED_BYTES) raw.destroy();
        };
        const hub = deps.metrics.events;
        const subscription = hub.subscribe((e) => {
          if (visibleEvent(access, e)) send(e);
        }, lastEventId);
        const snapshot = async (withHistory: boolean) => {
          const data = await snapshots.forCaller(access, withHistory);
          // A snapshot carries the id of the last change event before it, so resuming from it misses nothing.
          send({ id: hub.lastId, type: "snapshot", data });
        };
        const timer = setInterval(() => void snapshot(false).catch(() => undefined), deps.live.intervalMs);
        deps.metrics.eventStreams.inc();
        raw.once("close", () => {
          closed = true;
          clearInterval(timer);
          subscription.close();
          deps.metrics.eventStreams.dec();
        });
        raw.write(`retry: 1000\n\n`);
        for (const e of subscription.replay) if (visibleEvent(access, e)) send(e);
        await snapshot(lastEventId === undefined || subscription.gap).catch((error) => {
          request.log.warn({ err: error }, "live snapshot failed");
        });
        return reply;
      },
    );
  };
}
