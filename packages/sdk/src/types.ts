/** Public option and result types of the SDK. Wire types of the native API live in `@llmos/protocol`. */
import type { KeyScope, ModelInfo } from "@llmos/protocol";

/** A JSON Schema object (draft 2020-12 subset that llmos turns into a grammar). */
export type JsonSchema = Record<string, unknown>;

/** Per-request settings every call accepts. */
export interface RequestOptions {
  /** Cancels the request (and a running stream). Aborting throws `APIUserAbortError`. */
  signal?: AbortSignal;
  /** Overrides the client's timeout in ms for this call. */
  timeout?: number;
}

/** Sampling settings. Unset values take the model's defaults (Modelfile PARAMETERs), then the server's. */
export interface SamplingOptions extends RequestOptions {
  /** Most tokens to generate. */
  maxTokens?: number;
  /** 0 = greedy (deterministic). */
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  /** Seed for the sampler; equal seeds and settings give equal output. */
  seed?: number;
  /** Generation stops before any of these strings. */
  stop?: string | string[];
  presencePenalty?: number;
  frequencyPenalty?: number;
}

/** Token counts of one request. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/** Why generation ended: `stop` (end of text or a stop string), `length` (maxTokens), `tool_calls`, or other. */
export type FinishReason = "stop" | "length" | "tool_calls" | (string & {});

/** Result of a raw-prompt completion. */
export interface GenerateResult {
  text: string;
  finishReason: FinishReason | null;
  usage: Usage | undefined;
  /** Completion id from the server. */
  id: string | undefined;
  /** `x-request-id` of the response. */
  requestId: string | undefined;
}

/** A tool the model may call: plain form, or the OpenAI `{type:"function", function:{...}}` form. */
export type Tool =
  | { name: string; description?: string; parameters?: JsonSchema }
  | { type: "function"; function: { name: string; description?: string; parameters?: JsonSchema } };

/** How the model may use tools: `auto` (default), `none`, `required`, or one named function. */
export type ToolChoice = "auto" | "none" | "required" | { name: string };

/** A call the model asked for. */
export interface ToolCall {
  id: string;
  /** Function name. */
  name: string;
  /** Arguments parsed from JSON; the raw string when it does not parse. */
  arguments: unknown;
  /** Arguments exactly as the model produced them. */
  rawArguments: string;
}

/** One chat message. */
export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  /** Text; `null` for an assistant turn that only calls tools. */
  content: string | null;
  /** Tool calls made by an assistant turn. */
  toolCalls?: ToolCall[];
  /** For `role: "tool"`: the id of the call this message answers. */
  toolCallId?: string;
  /** Optional participant or tool name. */
  name?: string;
}

/** Options of {@link Model.chat} and {@link Model.streamChat}. */
export interface ChatOptions extends SamplingOptions {
  tools?: Tool[];
  toolChoice?: ToolChoice;
  /** Constrains the reply to JSON matching `schema` (see also {@link Model.generateObject}). */
  responseFormat?:
    { type: "json_object" } | { type: "json_schema"; name?: string; schema: JsonSchema; strict?: boolean };
}

/** Result of a chat request. */
export interface ChatResult {
  /** The assistant's text ("" when it only called tools). */
  text: string;
  /** The assistant message, ready to append to the conversation. */
  message: ChatMessage;
  /** Tool calls the model asked for (empty when none). */
  toolCalls: ToolCall[];
  finishReason: FinishReason | null;
  usage: Usage | undefined;
  id: string | undefined;
  requestId: string | undefined;
}

/** Options of {@link Model.generateObject}. */
export interface GenerateObjectOptions<T> extends SamplingOptions {
  /** JSON Schema the output must match; the server enforces it with a grammar. */
  schema: JsonSchema;
  /** Schema name sent to the server (default `output`). */
  name?: string;
  /** Optional extra check of the parsed value; a `false` result throws `OutputParseError`. */
  validate?: (value: unknown) => value is T;
}

/** Options of {@link Client.loadModel}. */
export interface LoadModelOptions extends RequestOptions {
  /** How long to stay loaded after the last request: seconds, a duration such as `10m`, or -1 for forever. */
  keepAlive?: number | string;
  /** Context size per sequence, tokens. */
  contextSize?: number;
  /** Parallel sequences. */
  parallel?: number;
  /** Pinned models are never evicted. */
  pinned?: boolean;
  /** The least decode threads the model gets while busy, however many other models are (its CPU floor). */
  minThreads?: number;
}

/** One progress line of `pull` or `create`. */
export interface ProgressEvent {
  status: string;
  digest?: string;
  /** Quantize: bytes of the output written so far (`total`/`completed` count tensors). */
  bytes?: number;
  /** Total bytes of the current step, when known. */
  total?: number;
  /** Bytes done in the current step. */
  completed?: number;
  /** On the final `{status: "success"}` event: the resulting model (pull, create). */
  model?: ModelInfo;
  /** On the final event of a push: where the model went and the manifest's digest. */
  reference?: string;
  manifestDigest?: string;
}

/** Options of {@link Client.quantize}. */
export interface QuantizeOptions extends RequestOptions {
  /** Target type, e.g. `Q4_K_M`, `Q8_0`, `IQ4_XS`. */
  type: string;
  /** Importance matrix: `sha256:<hex>` of a blob on the daemon (an imatrix job's result) or a path it can read. */
  imatrix?: string;
  /** No k-quant mixes. */
  pure?: boolean;
  /** Allow quantizing an already quantized model. */
  allowRequantize?: boolean;
}

/** Options of {@link Client.pull}. */
export interface PullOptions extends RequestOptions {
  /** Local name (default: derived from the reference). */
  name?: string;
  /** Git revision / branch of the repository. */
  revision?: string;
  /** Registry references: plain http to the registry (only where the daemon's pull policy allows). */
  insecure?: boolean;
}

/** Options of {@link Client.push}. */
export interface PushOptions extends RequestOptions {
  /** Plain http to the registry (only where the daemon's pull policy allows). */
  insecure?: boolean;
}

/** Permissions an API key can carry; `admin` implies all others. */

/** Request of {@link KeysApi.create}. */
export interface CreateKeyOptions extends RequestOptions {
  name: string;
  /** At least one scope. */
  scopes: KeyScope[];
  /** Model allow-list, globs such as `llama*` (default: every model). */
  models?: string[];
  /** Requests per minute (default: unlimited). */
  rpm?: number;
  /** Tokens (prompt + completion) per minute (default: unlimited). */
  tpm?: number;
  /** Tokens per UTC day (default: unlimited). */
  tokensPerDay?: number;
  /** ISO-8601 expiry time in the future (default: never). */
  expiresAt?: string;
}

/** Filters of {@link Client.usage}. */
export interface UsageOptions extends RequestOptions {
  /** ISO time (inclusive). */
  since?: string;
  /** Only this key; `"none"` for requests without a key. */
  keyId?: string;
  model?: string;
}

/** Filters of {@link Client.audit}. */
export interface AuditOptions extends RequestOptions {
  /** ISO time (inclusive). */
  since?: string;
  /** Most entries, newest first (server default 100). */
  limit?: number;
  /** Only this action. */
  action?: string;
}
