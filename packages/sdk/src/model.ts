import type { LoadedModel } from "@llmos/protocol";
import { chatBody, samplingFields, toolCallFrom, usageFrom } from "./convert.js";
import { LlmosError, OutputParseError } from "./errors.js";
import { readSse } from "./lines.js";
import { TextStream } from "./text-stream.js";
import { readJson, type Transport } from "./transport.js";
import type {
  ChatMessage,
  ChatOptions,
  ChatResult,
  GenerateObjectOptions,
  GenerateResult,
  RequestOptions,
  SamplingOptions,
  ToolCall,
} from "./types.js";
import type { ChatCompletionResponse, CompletionResponse, EmbeddingResponse, WireToolCall } from "./wire.js";

/**
 * A handle on one model of the daemon, returned by `Client.loadModel` (or `Client.model` without loading).
 * Holds no server resources itself: the daemon keeps the model loaded per its keep-alive.
 */
export class Model {
  /** Model name as the server knows it, e.g. `stories:latest`. */
  readonly name: string;
  /** What the load request returned, when this handle came from `loadModel`. */
  readonly info: LoadedModel | undefined;
  readonly #transport: Transport;
  readonly #unload: (name: string, opts?: RequestOptions) => Promise<void>;

  /** @internal Use `Client.loadModel` or `Client.model`. */
  constructor(
    transport: Transport,
    name: string,
    info: LoadedModel | undefined,
    unload: (name: string, opts?: RequestOptions) => Promise<void>,
  ) {
    this.#transport = transport;
    this.name = name;
    this.info = info;
    this.#unload = unload;
  }

  /**
   * Completes a raw prompt (no chat template) and returns the generated text.
   * @example `await model.generateText("Once upon a time", { maxTokens: 32, temperature: 0 })`
   */
  async generateText(prompt: string, opts: SamplingOptions = {}): Promise<string> {
    return (await this.complete(prompt, opts)).text;
  }

  /** Like {@link Model.generateText} but returns the finish reason and token usage too. */
  async complete(prompt: string, opts: SamplingOptions = {}): Promise<GenerateResult> {
    const body = { model: this.name, prompt, ...samplingFields(opts), stream: false };
    const open = await this.#transport.open({
      method: "POST",
      path: "/v1/completions",
      body,
      signal: opts.signal,
      timeout: opts.timeout,
    });
    const res = await readJson<CompletionResponse>(open);
    const choice = res.choices?.[0];
    return {
      text: choice?.text ?? "",
      finishReason: choice?.finish_reason ?? null,
      usage: usageFrom(res.usage),
      id: res.id,
      requestId: open.requestId,
    };
  }

  /**
   * Streams a raw-prompt completion as text deltas. `stream.result` / `stream.usage` give the totals at the end.
   * @example `for await (const t of model.streamText("Once")) process.stdout.write(t)`
   */
  streamText(prompt: string, opts: SamplingOptions = {}): TextStream<GenerateResult> {
    const transport = this.#transport;
    const body = {
      model: this.name,
      prompt,
      ...samplingFields(opts),
      stream: true,
      stream_options: { include_usage: true },
    };
    return new TextStream<GenerateResult>(async function* () {
      const open = await transport.open({
        method: "POST",
        path: "/v1/completions",
        body,
        signal: opts.signal,
        timeout: opts.timeout,
      });
      open.stopTimer();
      const result: GenerateResult = {
        text: "",
        finishReason: null,
        usage: undefined,
        id: undefined,
        requestId: open.requestId,
      };
      for await (const chunk of readSse<CompletionResponse>(open)) {
        result.id ??= chunk.id;
        if (chunk.usage) result.usage = usageFrom(chunk.usage);
        const choice = chunk.choices?.[0];
        if (choice?.finish_reason) result.finishReason = choice.finish_reason;
        if (choice?.text) {
          result.text += choice.text;
          yield choice.text;
        }
      }
      return result;
    }, opts.signal);
  }

  /** Sends a chat conversation (the model's chat template applies) and returns the reply, including tool calls. */
  async chat(messages: ChatMessage[], opts: ChatOptions = {}): Promise<ChatResult> {
    const body = chatBody(this.name, messages, opts, false);
    const open = await this.#transport.open({
      method: "POST",
      path: "/v1/chat/completions",
      body,
      signal: opts.signal,
      timeout: opts.timeout,
    });
    const res = await readJson<ChatCompletionResponse>(open);
    const choice = res.choices?.[0];
    const wire = choice?.message;
    const toolCalls = (wire?.tool_calls ?? []).map((c, i) => toolCallFrom(c, `call_${i}`));
    return chatResult(wire?.content ?? "", toolCalls, choice?.finish_reason ?? null, res, open.requestId);
  }

  /** Streams a chat reply as text deltas; tool calls are assembled into `stream.result`. */
  streamChat(messages: ChatMessage[], opts: ChatOptions = {}): TextStream<ChatResult> {
    const transport = this.#transport;
    const body = chatBody(this.name, messages, opts, true);
    return new TextStream<ChatResult>(async function* () {
      const open = await transport.open({
        method: "POST",
        path: "/v1/chat/completions",
        body,
        signal: opts.signal,
        timeout: opts.timeout,
      });
      open.stopTimer();
      let text = "";
      let finishReason: string | null = null;
      let last: ChatCompletionResponse | undefined;
      let usage: ChatCompletionResponse["usage"];
      const calls = new Map<number, WireToolCall & { function: { name: string; arguments: string } }>();
      for await (const chunk of readSse<ChatCompletionResponse>(open)) {
        last = chunk;
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices?.[0];
        if (!choice) continue;
        if (choice.finish_reason) finishReason = choice.finish_reason;
        for (const delta of choice.delta?.tool_calls ?? []) {
          const index = delta.index ?? calls.size;
          const call = calls.get(index) ?? { id: delta.id, type: "function", function: { name: "", arguments: "" } };
          if (delta.id) call.id = delta.id;
          if (delta.function?.name) call.function.name += delta.function.name;
          if (delta.function?.arguments) call.function.arguments += delta.function.arguments;
          calls.set(index, call);
        }
        const piece = choice.delta?.content;
        if (piece) {
          text += piece;
          yield piece;
        }
      }
      const toolCalls = [...calls.entries()].sort(([a], [b]) => a - b).map(([i, c]) => toolCallFrom(c, `call_${i}`));
      return chatResult(text, toolCalls, finishReason, { id: last?.id, usage }, open.requestId);
    }, opts.signal);
  }

  /** Embeds one text: returns its vector. */
  embed(input: string, opts?: RequestOptions): Promise<number[]>;
  /** Embeds several texts: returns one vector per text, in input order. */
  embed(input: string[], opts?: RequestOptions): Promise<number[][]>;
  async embed(input: string | string[], opts: RequestOptions = {}): Promise<number[] | number[][]> {
    const res = await this.#transport.json<EmbeddingResponse>({
      method: "POST",
      path: "/v1/embeddings",
      body: { model: this.name, input },
      signal: opts.signal,
      timeout: opts.timeout,
    });
    const vectors = [...(res.data ?? [])].sort((a, b) => a.index - b.index).map((d) => d.embedding);
    if (typeof input === "string") {
      const first = vectors[0];
      if (!first) throw new LlmosError("embedding response carried no vector", { code: "invalid_response" });
      return first;
    }
    return vectors;
  }

  /**
   * Generates JSON that matches `schema` (enforced by the server with a grammar) and returns it parsed.
   * A string prompt is sent as one user message.
   * @throws OutputParseError when the output is not valid JSON or fails `validate`.
   */
  async generateObject<T = unknown>(input: string | ChatMessage[], opts: GenerateObjectOptions<T>): Promise<T> {
    const messages: ChatMessage[] = typeof input === "string" ? [{ role: "user", content: input }] : input;
    const { schema, name, validate, ...rest } = opts;
    const result = await this.chat(messages, {
      ...rest,
      responseFormat: { type: "json_schema", name: name ?? "output", schema, strict: true },
    });
    let value: unknown;
    try {
      value = JSON.parse(result.text);
    } catch (error) {
      throw new OutputParseError(`model output is not valid JSON: ${result.text.slice(0, 200)}`, result.text, {
        requestId: result.requestId,
        cause: error,
      });
    }
    if (validate && !validate(value)) {
      throw new OutputParseError("model output failed validation", result.text, { requestId: result.requestId });
    }
    return value as T;
  }

  /** Asks the daemon to unload this model now. */
  unload(opts?: RequestOptions): Promise<void> {
    return this.#unload(this.name, opts);
  }
}

function chatResult(
  text: string,
  toolCalls: ToolCall[],
  finishReason: string | null,
  res: Pick<ChatCompletionResponse, "id" | "usage">,
  requestId: string | undefined,
): ChatResult {
  const message: ChatMessage = { role: "assistant", content: toolCalls.length && text === "" ? null : text };
  if (toolCalls.length) message.toolCalls = toolCalls;
  return { text, message, toolCalls, finishReason, usage: usageFrom(res.usage), id: res.id, requestId };
}
