import { api } from "../api";
import { ActionError, useAction } from "../action";
import { duration, number } from "../format";
import { requests, snapshot } from "../live";

/** Requests queued and running, live; admins may cancel them. */
export function Requests() {
  const s = snapshot.value;
  const list = requests.value;
  const action = useAction();
  const now = Date.now();
  return (
    <section>
      <ActionError action={action} />
      <p class="muted">
        {list.filter((r) => r.state === "running").length} running, {list.filter((r) => r.state === "queued").length}{" "}
        queued
      </p>
      <table class="grid" data-testid="requests">
        <thead>
          <tr>
            <th>Id</th>
            <th>Model</th>
            <th>Kind</th>
            <th>State</th>
            <th>Key</th>
            <th>Tokens so far</th>
            <th>Age</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.length === 0 && (
            <tr>
              <td colSpan={8} class="muted">
                No request is queued or running.
              </td>
            </tr>
          )}
          {list.map((r) => (
            <tr key={r.id} data-state={r.state}>
              <td title={r.requestId ?? ""}>{r.id}</td>
              <td>{r.model}</td>
              <td>{r.kind}</td>
              <td>{r.state}</td>
              <td>{r.keyName ?? "—"}</td>
              <td>{number(r.tokens)}</td>
              <td>{duration(now - r.arrivedAt)}</td>
              <td class="actions">
                {s?.access.admin && (
                  <button class="danger" onClick={() => action.run(() => api("DELETE", `/api/requests/${r.id}`))}>
                    Cancel
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
