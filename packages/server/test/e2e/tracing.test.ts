/**
 * OpenTelemetry traces: a collector stand-in receives OTLP/HTTP from a real daemon and checks the GenAI spans
 * against what the responses said (usage, id, finish reason), the span tree (server span -> GenAI span -> queue
 * wait, model load, prompt processing, generation), content capture off by default and on when asked, and that
 * a collector that never answers does not hold requests up.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import OpenAI from "openai";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
}

/** A collector stand-in: takes OTLP/HTTP JSON trace exports and keeps the spans. */
async function startCollector(): Promise<{ url: string; spans: OtlpSpan[]; contentTypes: string[]; close(): void }> {
  const spans: OtlpSpan[] = [];
  const contentTypes: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      contentTypes.push(String(req.headers["content-type"]));
      if (req.url === "/v1/traces") {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
          resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
        };
        for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, spans, contentTypes, close: () => server.close() };
}

function attr(span: OtlpSpan, key: string): unknown {
  const v = span.attributes.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  if ("stringValue" in v) return v.stringValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return Number(v.doubleValue);
  if ("boolValue" in v) return v.boolValue;
  if ("arrayValue" in v)
    return ((v.arrayValue as { values?: Array<{ stringValue?: string }> }).values ?? []).map((x) => x.stringValue);
  return v;
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ms = (nanos: string) => Number(BigInt(nanos) / 1_000_000n);

describe("OpenTelemetry GenAI traces", { timeout: 300_000 }, () => {
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let d: TestDaemon;

  before(async () => {
    collector = await startCollector();
    d = await startTestDaemon({ otlpEndpoint: collector.url });
  });
  after(async () => {
    await d?.stop();
    collector?.close();
  });

  it("writes a chat span whose usage, id and finish reason match the response, under the request's server span", async () => {
    const client = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const res = await client.chat.completions.create({
      model: "stories",
      messages: [{ role: "user", content: "Once upon a time" }],
      max_tokens: 24,
      temperature: 0.5,
      top_p: 0.9,
      seed: 42,
    });
    const chat = await waitFor("the chat span", () => collector.spans.find((s) => s.name === "chat stories:latest"));
    assert.equal(attr(chat, "gen_ai.operation.name"), "chat");
    assert.equal(attr(chat, "gen_ai.provider.name"), "llmos");
    assert.equal(attr(chat, "gen_ai.request.model"), "stories");
    assert.equal(attr(chat, "gen_ai.response.model"), "stories:latest");
    assert.equal(attr(chat, "gen_ai.request.max_tokens"), 24);
    assert.equal(attr(chat, "gen_ai.request.temperature"), 0.5);
    assert.equal(attr(chat, "gen_ai.request.top_p"), 0.9);
    assert.equal(attr(chat, "gen_ai.request.seed"), 42);
    assert.equal(attr(chat, "gen_ai.response.id"), res.id);
    assert.deepEqual(attr(chat, "gen_ai.response.finish_reasons"), [res.choices[0]!.finish_reason]);
    assert.equal(attr(chat, "gen_ai.usage.input_tokens"), res.usage!.prompt_tokens);
    assert.equal(attr(chat, "gen_ai.usage.output_tokens"), res.usage!.completion_tokens);
    assert.equal(attr(chat, "gen_ai.input.messages"), undefined, "no content unless LLMOS_OTLP_CAPTURE_CONTENT");
    assert.equal(attr(chat, "gen_ai.output.messages"), undefined);

    const server = await waitFor("the server span", () => collector.spans.find((s) => s.spanId === chat.parentSpanId));
    assert.equal(server.name, "POST /v1/chat/completions");
    assert.equal(server.kind, 2, "SERVER");
    assert.equal(attr(server, "http.response.status_code"), 200);
    assert.equal(server.traceId, chat.traceId);

    const children = await waitFor("the child spans", () => {
      const c = collector.spans.filter((s) => s.parentSpanId === chat.spanId);
      return c.length >= 4 ? c : undefined;
    });
    assert.deepEqual(children.map((c) => c.name).sort(), [
      "generation",
      "model load",
      "prompt processing",
      "queue wait",
    ]);
    for (const c of children) {
      assert.ok(ms(c.startTimeUnixNano) >= ms(chat.startTimeUnixNano) - 1, `${c.name} starts inside the chat span`);
      assert.ok(ms(c.endTimeUnixNano) <= ms(chat.endTimeUnixNano) + 1, `${c.name} ends inside the chat span`);
    }
  });

  it("writes text_completion and embeddings spans (streamed and Ollama routes too)", async () => {
    const stream = await fetch(`${d.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "stories",
        prompt: "Once upon a time",
        max_tokens: 8,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    const text = await stream.text();
    const usage = text
      .split("\n\n")
      .map((b) => b.replace(/^data: /, ""))
      .filter((b) => b.startsWith("{"))
      .map((b) => JSON.parse(b) as { usage?: { prompt_tokens: number; completion_tokens: number } })
      .find((c) => c.usage)!.usage!;
    const completion = await waitFor("the completion span", () =>
      collector.spans.find((s) => s.name === "text_completion stories:latest"),
    );
    assert.equal(attr(completion, "gen_ai.usage.input_tokens"), usage.prompt_tokens);
    assert.equal(attr(completion, "gen_ai.usage.output_tokens"), usage.completion_tokens);

    const embed = await api(d, "POST", "/api/embed", { model: "stories", input: ["a cat", "a dog"] });
    assert.equal(embed.status, 200);
    const span = await waitFor("the embeddings span", () =>
      collector.spans.find((s) => s.name === "embeddings stories:latest"),
    );
    assert.equal(attr(span, "gen_ai.operation.name"), "embeddings");
    assert.equal(attr(span, "gen_ai.usage.input_tokens"), embed.json.prompt_eval_count);
    assert.ok(collector.contentTypes.every((c) => c.startsWith("application/json")));
  });
});

describe("OpenTelemetry content capture and an unreachable collector", { timeout: 300_000 }, () => {
  it("puts prompt and completion text on the span with LLMOS_OTLP_CAPTURE_CONTENT", async () => {
    const collector = await startCollector();
    const d = await startTestDaemon({ otlpEndpoint: collector.url, otlpCaptureContent: true });
    try {
      const res = await api(d, "POST", "/v1/completions", {
        model: "stories",
        prompt: "Once upon a time",
        max_tokens: 12,
        temperature: 0,
      });
      assert.equal(res.status, 200);
      const span = await waitFor("the completion span", () =>
        collector.spans.find((s) => s.name === "text_completion stories:latest"),
      );
      const input = JSON.parse(String(attr(span, "gen_ai.input.messages")));
      const output = JSON.parse(String(attr(span, "gen_ai.output.messages")));
      assert.equal(input[0].parts[0].content, "Once upon a time");
      assert.equal(output[0].parts[0].content, res.json.choices[0].text);
    } finally {
      await d.stop();
      collector.close();
    }
  });

  it("answers requests while the collector never responds", async () => {
    // A collector that accepts connections and never answers: exports hang until their timeout.
    const sockets: Socket[] = [];
    let connections = 0;
    const blackHole = http.createServer(() => undefined);
    blackHole.on("connection", (s) => {
      connections++;
      sockets.push(s);
    });
    await new Promise<void>((r) => blackHole.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(blackHole.address() as AddressInfo).port}`;
    const d = await startTestDaemon({ otlpEndpoint: url });
    try {
      for (let i = 0; i < 6; i++) {
        const res = await api(d, "POST", "/v1/completions", { model: "stories", prompt: "Hi", max_tokens: 4 });
        assert.equal(res.status, 200);
      }
      await waitFor("an export attempt", () => (connections > 0 ? true : undefined));
    } finally {
      await d.stop();
      for (const s of sockets) s.destroy();
      blackHole.close();
    }
  });
});
