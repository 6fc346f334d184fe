/**
 * Turns a callback-reporting operation into an async iterator of its progress events: each event is yielded in
 * order; the iterator ends after the operation resolves and throws if it rejects. Breaking out of the loop aborts
 * the operation (through the signal passed to `run`).
 */
export async function* progressStream<E, T>(
  run: (onProgress: (event: E) => void, signal: AbortSignal) => Promise<T>,
  signal?: AbortSignal,
): AsyncGenerator<E, T, undefined> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) controller.abort(signal.reason);
  const queue: E[] = [];
  let wake: (() => void) | undefined;
  let settled: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  run((event) => {
    queue.push(event);
    notify();
  }, controller.signal).then(
    (value) => {
      settled = { ok: true, value };
      notify();
    },
    (error: unknown) => {
      settled = { ok: false, error };
      notify();
    },
  );
  try {
    for (;;) {
      while (queue.length > 0) yield queue.shift()!;
      if (settled) {
        if (!settled.ok) throw settled.error;
        return settled.value;
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // The consumer stopped early (break/return): cancel the operation.
    if (!settled) controller.abort(new Error("progress stream closed"));
  }
}
