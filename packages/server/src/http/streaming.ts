import type { FastifyReply } from "fastify";

/** Writes a streamed response directly to the socket, with back-pressure. */
export class ResponseStream {
  private ended = false;

  constructor(
    private readonly reply: FastifyReply,
    contentType: "text/event-stream" | "application/x-ndjson",
    extraHeaders: Record<string, string> = {},
  ) {
    reply.hijack();
    const headers: Record<string, string> = {
      "content-type": contentType === "text/event-stream" ? "text/event-stream; charset=utf-8" : "application/x-ndjson",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
      "x-request-id": String(reply.request.id),
      ...extraHeaders,
    };
    for (const [k, v] of Object.entries(reply.getHeaders()))
      if (v !== undefined && !(k in headers)) headers[k] = String(v);
    reply.raw.writeHead(200, headers);
  }

  get closed(): boolean {
    return this.ended || this.reply.raw.destroyed;
  }

  /** Writes a chunk; resolves when the socket can take more. */
  async write(text: string): Promise<void> {
    if (this.closed) return;
    if (!this.reply.raw.write(text))
      await new Promise<void>((resolve) => {
        const done = () => {
          this.reply.raw.off("drain", done);
          this.reply.raw.off("close", done);
          resolve();
        };
        this.reply.raw.once("drain", done);
        this.reply.raw.once("close", done);
      });
  }

  /** One Server-Sent Event; `event` names it (an `event:` line), as the Responses API does. */
  sse(data: unknown, event?: string): Promise<void> {
    const payload = `data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`;
    return this.write(event ? `event: ${event}\n${payload}` : payload);
  }

  ndjson(data: unknown): Promise<void> {
    return this.write(JSON.stringify(data) + "\n");
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.reply.raw.destroyed) this.reply.raw.end();
  }
}
