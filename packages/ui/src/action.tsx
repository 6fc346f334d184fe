import { useState } from "preact/hooks";

/** A button's action: runs one call at a time, keeps its error for display, counts successes (for refetches). */
export interface Action {
  busy: boolean;
  error: string | null;
  done: number;
  run(call: () => Promise<unknown>): void;
}

export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState(0);
  return {
    busy,
    error,
    done,
    run(call) {
      setBusy(true);
      setError(null);
      call()
        .then(() => setDone((n) => n + 1))
        .catch((e: Error) => setError(e.message))
        .finally(() => setBusy(false));
    },
  };
}

export function ActionError(props: { action: Action }) {
  return props.action.error ? (
    <p class="error" role="alert">
      {props.action.error}
    </p>
  ) : null;
}
