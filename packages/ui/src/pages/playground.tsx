import { useEffect, useRef, useState } from "preact/hooks";
import type { ModelSummary } from "@llmos/protocol";
import { api, headers, readSse } from "../api";
import { number } from "../format";
import { snapshot } from "../live";

interface Turn {
  role: "user" | "assistant";
  content: string;
}

/** Chat with a model over the OpenAI API, streamed, with the tokens per second of each answer. */
export function Playground() {
  const access = snapshot.value?.access;
  const [models, setModels] = useState<string[]>([]);
  const [model, setModel] = useState("");
  const [turns, setTurns] = useState<Turn[]>([]);
  const [input, setInput] = useState("");
  const [busy, setBusy] = useState(false);
  const [stats, setStats] = useState<string>("");
  const [error, setError] = useState<string | null>(null);
  const stop = useRef<AbortController | null>(null);

  useEffect(() => {
    if (!access?.modelsRead) return;
    api<{ models: ModelSummary[] }>("GET", "/api/models")
      .then((r) => {
        setModels(r.models.map((m) => m.name));
        setModel((m) => m || r.models[0]?.name || "");
      })
      .catch((e: Error) => setError(e.message));
  }, [access?.modelsRead]);

  if (access && !access.inference) return <p class="muted">This key may not run models (it lacks inference).</p>;

  const send = async () => {
    if (!input.trim() || !model) return;
    const history: Turn[] = [...turns, { role: "user", content: input }];
    setTurns([...history, { role: "assistant", content: "" }]);
    setInput("");
    setBusy(true);
    setError(null);
    const c = new AbortController();
    stop.current = c;
    const started = performance.now();
    let first: number | null = null;
    let text = "";
    try {
      const res = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: headers({ "content-type": "application/json" }),
        body: JSON.stringify({ model, messages: history, stream: true, stream_options: { include_usage: true } }),
        signal: c.signal,
        credentials: "omit",
      });
      if (!res.ok || !res.body) {
        const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
        throw new Error(body.error?.message ?? `HTTP ${res.status}`);
      }
      let completion = 0;
      for await (const msg of readSse(res.body)) {
        if (msg.data === "[DONE]") break;
        const chunk = JSON.parse(msg.data) as {
          choices: Array<{ delta?: { content?: string } }>;
          usage?: { completion_tokens: number };
          error?: { message: string };
        };
        if (chunk.error) throw new Error(chunk.error.message);
        if (chunk.usage) completion = chunk.usage.completion_tokens;
        const piece = chunk.choices[0]?.delta?.content ?? "";
        if (piece) {
          first ??= performance.now();
          text += piece;
          setTurns([...history, { role: "assistant", content: text }]);
        }
      }
      const end = performance.now();
      const gen = first !== null && completion > 1 ? (completion - 1) / ((end - first) / 1000) : null;
      setStats(
        `${completion} tokens, first after ${number(((first ?? end) - started) / 1000, 2)} s` +
          (gen !== null ? `, ${number(gen, 1)} tokens/s` : ""),
      );
    } catch (e) {
      if (!c.signal.aborted) setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
      stop.current = null;
    }
  };

  return (
    <section class="playground">
      <div class="inline">
        <label>
          Model{" "}
          <select value={model} onChange={(e) => setModel(e.currentTarget.value)} aria-label="model">
            {models.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        <button onClick={() => setTurns([])} disabled={busy}>
          New chat
        </button>
        <span class="muted" data-testid="playground-stats">
          {stats}
        </span>
      </div>
      {error && <p class="error">{error}</p>}
      <div class="turns" data-testid="turns">
        {turns.map((t, i) => (
          <div key={i} class={`turn ${t.role}`}>
            <b>{t.role}</b>
            <div class="content">{t.content}</div>
          </div>
        ))}
      </div>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void send();
        }}
      >
        <textarea
          value={input}
          onInput={(e) => setInput(e.currentTarget.value)}
          placeholder="Say something"
          aria-label="message"
          rows={2}
        />
        {busy ? (
          <button type="button" onClick={() => stop.current?.abort()}>
            Stop
          </button>
        ) : (
          <button type="submit">Send</button>
        )}
      </form>
    </section>
  );
}
