/**
 * The dashboard's only way to the daemon: same-origin fetch with the API key as a Bearer header. The key lives in
 * this tab's session storage (never a cookie, never in a URL), so closing the tab forgets it.
 */
const KEY_STORAGE = "llmos.key";

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

/** An API error with the daemon's message and code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export function headers(extra: Record<string, string> = {}): Record<string, string> {
  const key = storedKey();
  return { ...(key ? { authorization: `Bearer ${key}` } : {}), ...extra };
}

/** JSON request to the daemon; throws ApiError with the daemon's message on a non-2xx answer. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: headers(body !== undefined ? { "content-type": "application/json" } : {}),
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const err = (json as { error?: { message?: string; code?: string } | string } | undefined)?.error;
    const message = typeof err === "string" ? err : (err?.message ?? (text || res.statusText));
    throw new ApiError(res.status, message, typeof err === "object" ? err?.code : undefined);
  }
  return json as T;
}

/** One Server-Sent Event. */
export interface SseMessage {
  id: string | null;
  event: string;
  data: string;
}

/**
 * Reads an SSE response body message by message (EventSource cannot send an Authorization header, so the stream
 * is read over fetch).
 */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const msg: SseMessage = { id: null, event: "message", data: "" };
      const data: string[] = [];
      for (const line of block.split("\n")) {
        const colon = line.indexOf(":");
        if (colon === 0) continue;
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "id") msg.id = val;
        else if (field === "event") msg.event = val;
        else if (field === "data") data.push(val);
      }
      if (data.length === 0) continue;
      msg.data = data.join("\n");
      yield msg;
    }
  }
}
