import type { FastifyReply, FastifyRequest } from "fastify";
import { streamErrorPayload, type ErrorStyle } from "../errors.js";
import { clientGone } from "../request-context.js";
import { ResponseStream } from "../streaming.js";

/** For registry pulls: the stream opens once the manifest is in (an unknown name or tag is then a 404 status). */
export function afterManifest(event: ProgressEvent): boolean {
  return event.status !== "pulling manifest";
}

/** A progress event of a long model operation (pull, create), in Ollama's shape. */
export interface ProgressEvent {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

/** How {@link respondWithProgress} answers. */
export interface ProgressResponse<T> {
  /** NDJSON progress lines (true) or one JSON body at the end (false). */
  stream: boolean;
  style: ErrorStyle;
  /** Runs the operation; `signal` aborts when the client goes away. */
  run: (onProgress: (event: ProgressEvent) => void, signal: AbortSignal) => Promise<T>;
  /** The last NDJSON line (its `status` is "success") / the non-streamed body. */
  final: (result: T) => Record<string, unknown>;
  /**
   * Streamed answers start at the first event this accepts (default: the first event); earlier events are held, and
   * a failure before then is an HTTP error status, not an error line (a registry's unknown tag is a 404).
   */
  openOn?: (event: ProgressEvent) => boolean;
}

/**
 * Answers a long model operation: streamed, every progress event becomes an NDJSON line, then the final line; an
 * error after the stream started becomes an error line in the route's style. Not streamed, errors get their status.
 * The operation's own "success" event is replaced by the final line (which can carry the result).
 */
export async function respondWithProgress<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  options: ProgressResponse<T>,
): Promise<unknown> {
  const signal = clientGone(request, reply);
  if (!options.stream) return options.final(await options.run(() => {}, signal));
  let out: ResponseStream | undefined;
  const held: ProgressEvent[] = [];
  const open = (): ResponseStream => {
    if (!out) {
      out = new ResponseStream(reply, "application/x-ndjson");
      for (const event of held.splice(0)) void out.ndjson(event);
    }
    return out;
  };
  try {
    // Lines are written in order (raw.write is synchronous); back-pressure is left to the socket buffer here
    // because progress lines are small and throttled by the store.
    const result = await options.run((event) => {
      if (event.status === "success") return;
      if (!out && options.openOn && !options.openOn(event)) held.push(event);
      else void open().ndjson(event);
    }, signal);
    await open().ndjson(options.final(result));
  } catch (error) {
    if (!out) throw error;
    if (!out.closed) await out.ndjson(streamErrorPayload(error, options.style));
    request.log.warn({ err: error, reqId: request.id }, "model operation failed");
  } finally {
    out?.end();
  }
  return reply;
}
