/**
 * The one place a generation becomes an HTTP response, for both API styles: collected into one body or streamed
 * (SSE or NDJSON, with back-pressure), tool calls held back and parsed (`ToolStreamGate`), the generations
 * cancelled when the stream fails, and a failure after the headers were sent written as a last error frame in the
 * route's error shape. What differs between OpenAI and Ollama is only the frames and the body: a `WireFormat`.
 * Usage is recorded by the inference layer when the generations end (`GenerationRun`).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { TokenLogprob } from "../engine/engine.js";
import type { GenerationOutcome, GenerationRun } from "../inference/inference-service.js";
import { streamErrorPayload, type ErrorStyle } from "./errors.js";
import { parseToolCall, ToolStreamGate, type ParsedToolCall, type ToolPlan } from "./openai/tools.js";
import { ResponseStream } from "./streaming.js";

/** One choice, generated to the end. */
export interface FinishedChoice {
  index: number;
  /** Everything the model wrote (a tool call's JSON included). */
  text: string;
  logprobs: TokenLogprob[] | undefined;
  outcome: GenerationOutcome;
  /** The tool call the text is, when tools were offered and it parses as one. */
  toolCall: ParsedToolCall | null;
}

/** How one API style writes a generation: its frames when streamed, its body when not. */
export interface WireFormat {
  readonly contentType: "text/event-stream" | "application/x-ndjson";
  readonly errorStyle: ErrorStyle;
  /** Frames before any text. */
  opening(): unknown[];
  /** The frames for text as it is shown (tool-call candidates are held back); none sends nothing. */
  text(index: number, text: string, logprobs: TokenLogprob[] | undefined): unknown[];
  /** Frames when a choice ends: `held` is text held back that turned out not to be a tool call. */
  choiceEnd(choice: FinishedChoice, held: string): Promise<unknown[]> | unknown[];
  /** Frames after every choice ended. */
  closing(outcomes: GenerationOutcome[]): Promise<unknown[]> | unknown[];
  /** The body of an answer that is not streamed. */
  body(choices: FinishedChoice[]): Promise<unknown> | unknown;
  /** The SSE `event:` name of a frame (the Responses API names every event); none by default. */
  eventOf?(frame: unknown): string | undefined;
  /** The last frame when the stream fails after the headers (default: the error body of `errorStyle`). */
  errorFrame?(error: unknown): unknown;
}

export interface SendOptions {
  stream: boolean;
  /** Tools the model was offered: its output is parsed for a call (held back while it may be one). */
  tools?: ToolPlan | undefined;
}

/** Answers `request` with `run`'s generations in `format`. */
export async function sendGeneration(
  request: FastifyRequest,
  reply: FastifyReply,
  run: GenerationRun,
  format: WireFormat,
  options: SendOptions,
): Promise<unknown> {
  if (!options.stream) {
    const choices = await Promise.all(run.choices.map((g, index) => collect(g, index, options.tools)));
    await run.result;
    return format.body(choices);
  }
  const out = new ResponseStream(reply, format.contentType);
  const write = (frame: unknown) =>
    format.contentType === "text/event-stream" ? out.sse(frame, format.eventOf?.(frame)) : out.ndjson(frame);
  try {
    for (const frame of format.opening()) await write(frame);
    await Promise.all(
      run.choices.map(async (g, index) => {
        const gate = options.tools ? new ToolStreamGate(options.tools.mode) : undefined;
        let text = "";
        let logprobs: TokenLogprob[] | undefined;
        for await (const chunk of g) {
          if (!chunk.text && !chunk.logprobs) continue;
          text += chunk.text;
          if (chunk.logprobs) (logprobs ??= []).push(...chunk.logprobs);
          const shown = gate ? gate.push(chunk.text) : chunk.text;
          // Held-back text (a tool call in the making) is sent at the end, without logprobs.
          if (gate && !shown && gate.holding) continue;
          for (const frame of format.text(index, shown, chunk.logprobs)) await write(frame);
        }
        const outcome = await g.result;
        const held = gate?.held ?? "";
        const toolCall = held && options.tools ? parseToolCall(held, options.tools.tools) : null;
        const finished = settle({ index, text, logprobs, outcome, toolCall }, options.tools);
        const shownAtEnd = toolCall || truncatedCall(toolCall, options.tools) ? "" : held;
        for (const frame of await format.choiceEnd(finished, shownAtEnd)) await write(frame);
      }),
    );
    for (const frame of await format.closing(await run.result)) await write(frame);
  } catch (error) {
    run.cancel();
    if (!out.closed) await write(format.errorFrame?.(error) ?? streamErrorPayload(error, format.errorStyle));
    request.log.warn({ err: error, reqId: request.id }, "stream ended with an error");
  } finally {
    out.end();
  }
  return reply;
}

async function collect(
  g: GenerationRun["choices"][number],
  index: number,
  tools: ToolPlan | undefined,
): Promise<FinishedChoice> {
  let text = "";
  let logprobs: TokenLogprob[] | undefined;
  for await (const chunk of g) {
    text += chunk.text;
    if (chunk.logprobs) (logprobs ??= []).push(...chunk.logprobs);
  }
  const outcome = await g.result;
  return settle({ index, text, logprobs, outcome, toolCall: tools ? parseToolCall(text, tools.tools) : null }, tools);
}

/** A forced call that does not parse: the grammar was cut off (max_tokens) or the generation cancelled. */
function truncatedCall(toolCall: ParsedToolCall | null, tools: ToolPlan | undefined): boolean {
  return !toolCall && tools?.mode === "forced";
}

/**
 * A forced tool call cut off before its JSON closed is dropped: the choice has no text (never partial JSON as
 * content) and keeps its finish reason (`length`), so a client sees a truncated answer, not a malformed one.
 */
function settle(choice: FinishedChoice, tools: ToolPlan | undefined): FinishedChoice {
  return truncatedCall(choice.toolCall, tools) ? { ...choice, text: "", logprobs: undefined } : choice;
}
