import { LlmosError, errorFromResponse } from "./errors.js";
import type { OpenResponse } from "./transport.js";

/** Yields the lines of a streamed response body (without line terminators). Closes the response when done. */
export async function* readLines(open: OpenResponse): AsyncGenerator<string> {
  const body = open.response.body;
  if (!body) {
    open.close();
    return;
  }
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (error) {
        throw open.mapReadError(error);
      }
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        yield line.endsWith("\r") ? line.slice(0, -1) : line;
      }
    }
    buffer += decoder.decode();
    if (buffer !== "") yield buffer;
  } finally {
    // Early exit by the consumer (break/return) lands here too: release the connection.
    reader.cancel().catch(() => {});
    open.close();
  }
}

/** Throws the typed error carried by a stream event `{error:{...}}`, if it is one. */
function throwIfError(event: unknown, open: OpenResponse): void {
  if (event && typeof event === "object" && "error" in event && (event as { error: unknown }).error) {
    throw errorFromResponse({ body: event, requestId: open.requestId });
  }
}

function parseEvent(text: string, open: OpenResponse): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new LlmosError(`stream event is not valid JSON: ${text.slice(0, 200)}`, {
      code: "invalid_response",
      status: open.response.status,
      requestId: open.requestId,
      cause: error,
    });
  }
}

/**
 * Yields the JSON payloads of a Server-Sent Events body until `data: [DONE]`.
 * A payload `{error:{...}}` is thrown as a typed error.
 */
export async function* readSse<T>(open: OpenResponse): AsyncGenerator<T> {
  let data: string[] = [];
  for await (const line of readLines(open)) {
    if (line === "") {
      if (data.length === 0) continue;
      const payload = data.join("\n");
      data = [];
      if (payload === "[DONE]") return;
      const event = parseEvent(payload, open);
      throwIfError(event, open);
      yield event as T;
      continue;
    }
    if (line.startsWith(":")) continue;
    if (line.startsWith("data:")) data.push(line.slice(line[5] === " " ? 6 : 5));
  }
  if (data.length > 0) {
    const payload = data.join("\n");
    if (payload === "[DONE]") return;
    const event = parseEvent(payload, open);
    throwIfError(event, open);
    yield event as T;
  }
}

/** Yields the JSON objects of a newline-delimited JSON body. A line `{error:{...}}` is thrown as a typed error. */
export async function* readNdjson<T>(open: OpenResponse): AsyncGenerator<T> {
  for await (const line of readLines(open)) {
    if (line.trim() === "") continue;
    const event = parseEvent(line, open);
    throwIfError(event, open);
    yield event as T;
  }
}
