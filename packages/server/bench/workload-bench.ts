/**
 * "Real workloads": what chat clients and long prompts do, measured on llmos over HTTP and on llama-server (native
 * build, same threads, same slots, its prompt cache on) in the same rounds, with the same requests (OpenAI
 * streaming completions of text built here, so both servers tokenize the same prompts):
 * 1. an 8-turn conversation: the whole conversation is resent every turn (prompt ~270 -> ~830 tokens, 32 tokens
 *    generated per turn); time to first token per turn and the total;
 * 2. four such conversations interleaved on four slots (each turn of the four sent together); the share of prompt
 *    tokens served from the cache after the first turn;
 * 3. a fresh prompt of about 1500 tokens: time to first token;
 * 4. a 1024-token generation: tokens/s;
 * 5. four new conversations sharing a ~1000-token system prompt, each started once the one before streams its
 *    first token: time to first token of the 2nd-4th against the first's (llmos copies the evaluated prefix from
 *    the slot still generating; llama-server evaluates it again).
 */
import type http from "node:http";
import { request } from "./http-client.js";
import { settle, spread, type Spread } from "./stats.js";

/** A server under test: llmos or llama-server, both answering OpenAI's /v1/completions. */
export interface WorkloadTarget {
  name: string;
  url: string;
  model: string;
  /** Its own keep-alive agent: llama-server may close a connection after a stream, which must not hit the other. */
  agent: http.Agent;
}

/** One streamed completion as measured by the client. */
export interface CompletionRun {
  text: string;
  ttftMs: number;
  totalMs: number;
  promptTokens: number;
  /** Prompt tokens the server says came from its cache (llmos: usage; llama-server: timings.cache_n). */
  cachedTokens: number | null;
  completionTokens: number;
}

/** One streamed /v1/completions request, greedy, generating exactly `maxTokens` (ignore_eos). */
export async function complete(
  t: WorkloadTarget,
  prompt: string,
  maxTokens: number,
  onFirstToken?: () => void,
): Promise<CompletionRun> {
  const started = performance.now();
  const res = await request(
    `${t.url}/v1/completions`,
    {
      model: t.model,
      prompt,
      max_tokens: maxTokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      ignore_eos: true,
      cache_prompt: true,
    },
    "POST",
    t.agent,
  );
  if (!res.ok) throw new Error(`${t.name}: HTTP ${res.status}: ${await res.text()}`);
  let first = 0;
  let text = "";
  let buf = "";
  let usage: { prompt_tokens: number; completion_tokens: number; cached?: number } | undefined;
  let cacheN: number | undefined;
  let done = false;
  // Read up to [DONE]: llama-server may close the connection without ending the chunked body.
  for await (const chunk of res.body) {
    buf += chunk.toString();
    let i: number;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!event.startsWith("data: ")) continue;
      const data = event.slice(6).trim();
      if (data === "[DONE]") {
        done = true;
        continue;
      }
      const json = JSON.parse(data) as {
        choices?: Array<{ text?: string }>;
        usage?: {
          prompt_tokens: number;
          completion_tokens: number;
          prompt_tokens_details?: { cached_tokens?: number };
        };
        timings?: { cache_n?: number };
      };
      const piece = json.choices?.[0]?.text;
      if (piece) {
        if (!first) {
          first = performance.now();
          onFirstToken?.();
        }
        text += piece;
      }
      if (json.usage)
        usage = {
          prompt_tokens: json.usage.prompt_tokens,
          completion_tokens: json.usage.completion_tokens,
          ...(json.usage.prompt_tokens_details?.cached_tokens !== undefined
            ? { cached: json.usage.prompt_tokens_details.cached_tokens }
            : {}),
        };
      if (json.timings?.cache_n !== undefined) cacheN = json.timings.cache_n;
    }
    if (done) break;
  }
  const end = performance.now();
  return {
    text,
    ttftMs: (first || end) - started,
    totalMs: end - started,
    promptTokens: usage?.prompt_tokens ?? NaN,
    cachedTokens: cacheN ?? usage?.cached ?? null,
    completionTokens: usage?.completion_tokens ?? NaN,
  };
}

/** Deterministic filler text: words from a small list, picked by a seeded generator (about 1 token a word). */
export function words(seed: number, n: number): string {
  const list = [
    "the",
    "river",
    "stone",
    "light",
    "garden",
    "quiet",
    "morning",
    "letter",
    "window",
    "bread",
    "music",
    "paper",
    "silver",
    "market",
    "forest",
    "winter",
    "harbor",
    "candle",
    "bridge",
    "cloud",
    "story",
    "answer",
    "field",
    "mountain",
    "little",
    "yellow",
    "table",
    "voice",
    "dream",
    "road",
  ];
  let x = seed * 2654435761 + 1;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(list[x % list.length]!);
  }
  return out.join(" ");
}

export interface ConversationResult {
  /** Time to first token per turn. */
  ttftMs: number[];
  /** Wall time of all turns. */
  totalMs: number;
  promptTokens: number[];
  cachedTokens: Array<number | null>;
}

/**
 * One conversation of `turns` turns: the first prompt is a ~`opening`-word request, each later turn resends the
 * conversation with the previous answer and a ~`followUp`-word user message appended.
 */
export async function conversation(
  t: WorkloadTarget,
  seed: number,
  opts: { turns: number; opening: number; followUp: number; answer: number },
): Promise<ConversationResult> {
  let prompt = `User: ${words(seed, opts.opening)}\nAssistant:`;
  const result: ConversationResult = { ttftMs: [], totalMs: 0, promptTokens: [], cachedTokens: [] };
  const started = performance.now();
  for (let turn = 0; turn < opts.turns; turn++) {
    const r = await complete(t, prompt, opts.answer);
    result.ttftMs.push(r.ttftMs);
    result.promptTokens.push(r.promptTokens);
    result.cachedTokens.push(r.cachedTokens);
    prompt += `${r.text}\nUser: ${words(seed * 100 + turn, opts.followUp)}\nAssistant:`;
  }
  result.totalMs = performance.now() - started;
  return result;
}

/** Four conversations, each turn of the four sent at once: per-turn max TTFT, total time, cache hit rate. */
export async function interleaved(
  t: WorkloadTarget,
  seed: number,
  opts: { conversations: number; turns: number; opening: number; followUp: number; answer: number },
) {
  const prompts = Array.from(
    { length: opts.conversations },
    (_, c) => `User: ${words(seed + 1000 * (c + 1), opts.opening)}\nAssistant:`,
  );
  let prompt = 0;
  let cached = 0;
  const started = performance.now();
  for (let turn = 0; turn < opts.turns; turn++) {
    const runs = await Promise.all(prompts.map((p) => complete(t, p, opts.answer)));
    runs.forEach((r, c) => {
      if (turn > 0) {
        prompt += r.promptTokens;
        cached += r.cachedTokens ?? 0;
      }
      prompts[c] += `${r.text}\nUser: ${words(seed + 1000 * (c + 1) + turn, opts.followUp)}\nAssistant:`;
    });
  }
  return { totalMs: performance.now() - started, hitRateAfterFirstTurn: prompt > 0 ? cached / prompt : NaN };
}

/**
 * Four new conversations sharing a long system prompt, each started as soon as the one before has its first token
 * (so the earlier ones are still generating, on their own slots): TTFT of each.
 */
export async function sharedSystemPrompt(t: WorkloadTarget, seed: number, systemWords: number): Promise<number[]> {
  const system = `System: ${words(seed, systemWords)}\n`;
  const ttft: number[] = [];
  const running: Array<Promise<CompletionRun>> = [];
  for (let c = 0; c < 4; c++) {
    let started!: () => void;
    const firstToken = new Promise<void>((r) => (started = r));
    const run = complete(t, `${system}User: ${words(seed + c + 1, 20)}\nAssistant:`, 32, started);
    running.push(run);
    await Promise.race([firstToken, run]);
  }
  for (const r of await Promise.all(running)) ttft.push(r.ttftMs);
  return ttft;
}

export interface WorkloadRound {
  conversation: ConversationResult;
  interleaved: { totalMs: number; hitRateAfterFirstTurn: number };
  freshPromptTtftMs: number;
  freshPromptTokens: number;
  longGenerationTps: number;
  sharedSystemTtftMs: number[];
}

export interface WorkloadOptions {
  turns: number;
  longTokens: number;
  freshWords: number;
  systemWords: number;
}

/** One round of every workload on one target; `seed` makes every prompt of the round new to both servers. */
export async function workloadRound(t: WorkloadTarget, seed: number, o: WorkloadOptions): Promise<WorkloadRound> {
  const conv = { turns: o.turns, opening: 240, followUp: 45, answer: 32 };
  const c = await conversation(t, seed, conv);
  await settle();
  const il = await interleaved(t, seed + 50_000, { ...conv, conversations: 4 });
  await settle();
  const fresh = await complete(t, words(seed + 90_000, o.freshWords), 4);
  await settle();
  const long = await complete(t, `Story ${seed}:`, o.longTokens);
  // From the first to the last token: generation speed, the (short) prompt excluded.
  const longTps = (long.completionTokens - 1) / ((long.totalMs - long.ttftMs) / 1000);
  await settle();
  const shared = await sharedSystemPrompt(t, seed + 70_000, o.systemWords);
  return {
    conversation: c,
    interleaved: il,
    freshPromptTtftMs: fresh.ttftMs,
    freshPromptTokens: fresh.promptTokens,
    longGenerationTps: longTps,
    sharedSystemTtftMs: shared,
  };
}

/** What the report shows of one target's rounds. */
export interface WorkloadSummary {
  ttftByTurnMs: Spread[];
  conversationTotalMs: Spread;
  interleavedTotalMs: Spread;
  interleavedHitRate: Spread;
  freshPromptTtftMs: Spread;
  freshPromptTokens: number;
  longGenerationTps: Spread;
  /** TTFT of the slowest of the 2nd-4th conversations over the 1st's, per round. */
  sharedSystemRatio: Spread;
  promptTokensByTurn: number[];
}

export function summarize(rounds: WorkloadRound[]): WorkloadSummary {
  const turns = rounds[0]?.conversation.ttftMs.length ?? 0;
  return {
    ttftByTurnMs: Array.from({ length: turns }, (_, i) => spread(rounds.map((r) => r.conversation.ttftMs[i]!))),
    conversationTotalMs: spread(rounds.map((r) => r.conversation.totalMs)),
    interleavedTotalMs: spread(rounds.map((r) => r.interleaved.totalMs)),
    interleavedHitRate: spread(rounds.map((r) => r.interleaved.hitRateAfterFirstTurn)),
    freshPromptTtftMs: spread(rounds.map((r) => r.freshPromptTtftMs)),
    freshPromptTokens: rounds[0]?.freshPromptTokens ?? NaN,
    longGenerationTps: spread(rounds.map((r) => r.longGenerationTps)),
    // The slowest of the 2nd-4th against the first.
    sharedSystemRatio: spread(rounds.map((r) => Math.max(...r.sharedSystemTtftMs.slice(1)) / r.sharedSystemTtftMs[0]!)),
    promptTokensByTurn: rounds[0]?.conversation.promptTokens ?? [],
  };
}
