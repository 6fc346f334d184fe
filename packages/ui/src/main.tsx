import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { signal } from "@preact/signals";
import { storedKey, storeKey } from "./api";
import { connect, connection, snapshot } from "./live";
import { Audit } from "./pages/audit";
import { Keys } from "./pages/keys";
import { Logs } from "./pages/logs";
import { Models } from "./pages/models";
import { Overview } from "./pages/overview";
import { Playground } from "./pages/playground";
import { Requests } from "./pages/requests";
import "./style.css";

const PAGES = {
  overview: { title: "Overview", view: Overview },
  models: { title: "Models", view: Models },
  requests: { title: "Requests", view: Requests },
  keys: { title: "Keys & usage", view: Keys },
  audit: { title: "Audit", view: Audit },
  logs: { title: "Logs", view: Logs },
  playground: { title: "Playground", view: Playground },
} as const;
type Page = keyof typeof PAGES;

function pageOf(hash: string): Page {
  const name = hash.replace(/^#\/?/, "");
  return name in PAGES ? (name as Page) : "overview";
}

const page = signal<Page>(pageOf(location.hash));
addEventListener("hashchange", () => (page.value = pageOf(location.hash)));

/** The key form: asks for an API key (or the admin token) and keeps it in this tab's session storage only. */
function Login(props: { reason?: string | undefined; onDone?: () => void }) {
  const [value, setValue] = useState("");
  return (
    <form
      class="login"
      onSubmit={(e) => {
        e.preventDefault();
        storeKey(value.trim() || null);
        props.onDone?.();
        connect();
      }}
    >
      <h2>Sign in</h2>
      {props.reason && <p class="error">{props.reason}</p>}
      <p class="muted">
        An API key (<code>llmos_…</code>) or, on this machine, the admin token from <code>$LLMOS_HOME/admin.token</code>
        . It stays in this browser tab only.
      </p>
      <input
        type="password"
        autoComplete="off"
        placeholder="API key"
        aria-label="API key"
        value={value}
        onInput={(e) => setValue(e.currentTarget.value)}
      />
      <button type="submit">Sign in</button>
    </form>
  );
}

function App() {
  const [asking, setAsking] = useState(false);
  useEffect(() => {
    // Without a key in this tab, ask the daemon whether one is needed first (no request fails with a 401).
    if (storedKey()) return connect();
    fetch("/ui/auth.json", { credentials: "omit", cache: "no-store" })
      .then((r) => r.json() as Promise<{ authRequired: boolean }>)
      .then((a) => (a.authRequired ? setAsking(true) : connect()))
      .catch(() => connect());
  }, []);
  const conn = connection.value;
  if (conn.state === "denied" || asking)
    return (
      <main class="center">
        <Login reason={asking ? undefined : conn.error} onDone={() => setAsking(false)} />
      </main>
    );
  const s = snapshot.value;
  const View = PAGES[page.value].view;
  return (
    <>
      <header>
        <span class="brand">llmos</span>
        <nav>
          {(Object.keys(PAGES) as Page[]).map((p) => (
            <a key={p} href={`#/${p}`} class={p === page.value ? "active" : ""}>
              {PAGES[p].title}
            </a>
          ))}
        </nav>
        <span class={`conn conn-${conn.state}`} data-testid="connection" title={conn.error ?? ""}>
          {conn.state}
        </span>
        <span class="muted">
          {s ? `v${s.version} · ${s.access.admin ? "admin" : s.access.modelsWrite ? "read-write" : "read-only"}` : ""}
        </span>
        <button onClick={() => setAsking(true)}>{storedKey() ? "Change key" : "Sign in"}</button>
        {storedKey() && (
          <button
            onClick={() => {
              storeKey(null);
              connect();
            }}
          >
            Sign out
          </button>
        )}
      </header>
      <main>
        <h2>{PAGES[page.value].title}</h2>
        <View />
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
