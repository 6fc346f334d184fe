import readline from "node:readline";
import type { Command } from "commander";
import type { ChatMessage, Model, SamplingOptions } from "llmos";
import type { CliContext } from "../context.js";

interface RunOptions {
  temperature?: string;
  topP?: string;
  topK?: string;
  minP?: string;
  seed?: string;
  maxTokens?: string;
  stop?: string[];
  system?: string;
  raw?: boolean;
  chat?: boolean;
  interactive?: boolean;
}

function num(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`invalid ${flag} "${value}"`);
  return n;
}

function sampling(opts: RunOptions): SamplingOptions {
  return {
    temperature: num(opts.temperature, "--temperature"),
    topP: num(opts.topP, "--top-p"),
    topK: num(opts.topK, "--top-k"),
    minP: num(opts.minP, "--min-p"),
    seed: num(opts.seed, "--seed"),
    maxTokens: num(opts.maxTokens, "--max-tokens"),
    stop: opts.stop,
  };
}

/**
 * `llmos run <model> [prompt]`: streams a reply, or opens a chat REPL without a prompt (`/bye` exits).
 * Models with a chat template are chatted with; models without one (or with `--raw`) get the raw prompt.
 */
export function registerRun(program: Command, ctx: CliContext): void {
  program
    .command("run")
    .description("generate from a prompt, or chat interactively")
    .argument("<model>", "model name")
    .argument("[prompt...]", "prompt (omit for an interactive session)")
    .option("--temperature <t>", "sampling temperature (0 = greedy)")
    .option("--top-p <p>", "nucleus sampling")
    .option("--top-k <k>", "top-k sampling")
    .option("--min-p <p>", "min-p sampling")
    .option("--seed <n>", "sampler seed")
    .option("-n, --max-tokens <n>", "most tokens to generate")
    .option("--stop <text...>", "stop sequences")
    .option("--system <text>", "system message (chat mode)")
    .option("--raw", "send the prompt as is, without the chat template")
    .option("--chat", "use the chat template even if the model has none")
    .option("-i, --interactive", "open the chat session even when stdin is not a terminal")
    .action(async (name: string, words: string[], opts: RunOptions, cmd: Command) => {
      const client = await ctx.client();
      const options = sampling(opts);
      let chatMode: boolean;
      if (opts.raw) chatMode = false;
      else if (opts.chat) chatMode = true;
      else chatMode = (await client.show(name)).details.hasChatTemplate;
      const model = client.model(name);
      const history: ChatMessage[] = opts.system ? [{ role: "system", content: opts.system }] : [];
      const json = ctx.json(cmd);

      let prompt = words.join(" ");
      // Piped input without a prompt is the prompt (like `echo hi | ollama run m`), unless -i asks for a session.
      if (prompt === "" && !opts.interactive && !process.stdin.isTTY) prompt = (await readAll(ctx.stdin)).trim();
      if (prompt !== "") {
        const stream = chatMode
          ? model.streamChat([...history, { role: "user", content: prompt }], options)
          : model.streamText(prompt, options);
        if (json) return ctx.printJson(await stream.result);
        await pipe(ctx, stream);
        ctx.write("\n");
        return;
      }
      await repl(ctx, model, chatMode, history, options);
    });
}

async function pipe(ctx: CliContext, stream: AsyncIterable<string>): Promise<string> {
  let text = "";
  for await (const piece of stream) {
    text += piece;
    ctx.write(piece);
  }
  return text;
}

async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  let text = "";
  for await (const chunk of input) text += String(chunk);
  return text;
}

async function repl(
  ctx: CliContext,
  model: Model,
  chatMode: boolean,
  history: ChatMessage[],
  options: SamplingOptions,
): Promise<void> {
  const rl = readline.createInterface({ input: ctx.stdin, output: ctx.stdout, terminal: Boolean(ctx.stdout.isTTY) });
  let generation: AbortController | undefined;
  rl.on("SIGINT", () => {
    if (generation) generation.abort();
    else rl.close();
  });
  ctx.info(
    `chatting with ${model.name}${chatMode ? "" : " (raw prompts)"}; /bye to exit, /clear to forget the conversation`,
  );
  const lines = rl[Symbol.asyncIterator]();
  try {
    for (;;) {
      rl.setPrompt(">>> ");
      rl.prompt();
      const next = await lines.next();
      if (next.done) break;
      const line = String(next.value).trim();
      if (line === "") continue;
      if (line === "/bye" || line === "/exit") break;
      if (line === "/clear") {
        history.splice(history[0]?.role === "system" ? 1 : 0);
        ctx.info("conversation cleared");
        continue;
      }
      generation = new AbortController();
      const signal = generation.signal;
      try {
        if (chatMode) {
          history.push({ role: "user", content: line });
          const text = await pipe(ctx, model.streamChat(history, { ...options, signal }));
          history.push({ role: "assistant", content: text });
        } else {
          await pipe(ctx, model.streamText(line, { ...options, signal }));
        }
      } catch (error) {
        if (!signal.aborted) throw error;
      } finally {
        generation = undefined;
      }
      ctx.write("\n");
    }
  } finally {
    rl.close();
  }
}
