/**
 * Entry of the Jinja worker thread: renders chat templates (from GGUF files, so untrusted) with a step limit and an
 * output limit, on a thread whose heap and time the daemon bounds (see JinjaSandbox).
 */
import { parentPort } from "node:worker_threads";
import { Interpreter, Template } from "@huggingface/jinja";

/** A render job. */
export interface JinjaJob {
  id: number;
  template: string;
  context: Record<string, unknown>;
  maxSteps: number;
  maxOutputChars: number;
}

/** Thrown inside the interpreter when a limit is reached; reported as a 400. */
class LimitReached extends Error {}

// Every node the interpreter evaluates counts one step; a string value longer than the output limit stops it. The
// interpreter is synchronous and this thread renders one template at a time, so one counter is enough.
let steps = 0;
let limits = { maxSteps: 0, maxOutputChars: 0 };
const evaluate = Interpreter.prototype.evaluate;
Interpreter.prototype.evaluate = function (this: Interpreter, ...args: Parameters<typeof evaluate>) {
  if (++steps > limits.maxSteps) throw new LimitReached(`it takes more than ${limits.maxSteps} steps`);
  const value = evaluate.apply(this, args);
  const v = (value as { value?: unknown }).value;
  if (typeof v === "string" && v.length > limits.maxOutputChars)
    throw new LimitReached(`it builds a string longer than ${limits.maxOutputChars} characters`);
  return value;
};

/** Throws when `range(...args)` would build more items than the step limit lets a template use anyway. */
function checkRange(args: unknown[]): void {
  const [first, second, step = 1] = args as number[];
  const [start, stop] = second === undefined ? [0, first] : [first, second];
  if (typeof start !== "number" || typeof stop !== "number" || typeof step !== "number" || step === 0) return;
  const n = Math.max(0, Math.ceil((stop - start) / step));
  if (!Number.isFinite(n) || n > limits.maxSteps) throw new LimitReached(`range() of ${n} items`);
}

// `range` is a global the library defines in each render's environment (as a FunctionValue); wrap it before the
// program runs, so a huge range fails at once instead of building a list of a billion numbers.
type FunctionValueLike = { value: (args: Array<{ value: unknown }>, scope: unknown) => unknown; bounded?: boolean };
const run = Interpreter.prototype.run;
Interpreter.prototype.run = function (this: Interpreter, ...args: Parameters<typeof run>) {
  const vars = (this.global as unknown as { variables: Map<string, FunctionValueLike> }).variables;
  const range = vars.get("range");
  if (range && !range.bounded) {
    const original = range.value;
    const Ctor = range.constructor as new (fn: FunctionValueLike["value"]) => FunctionValueLike;
    const bounded = new Ctor((callArgs, scope) => {
      checkRange(callArgs.map((a) => a.value));
      return original(callArgs, scope);
    });
    bounded.bounded = true;
    vars.set("range", bounded);
  }
  return run.apply(this, args);
};

const compiled = new Map<string, Template>();

function render(job: JinjaJob): string {
  let t = compiled.get(job.template);
  if (!t) {
    try {
      t = new Template(job.template);
    } catch (error) {
      throw new Error(`the model's chat template does not parse: ${(error as Error).message}`);
    }
    if (compiled.size >= 16) compiled.clear();
    compiled.set(job.template, t);
  }
  steps = 0;
  limits = { maxSteps: job.maxSteps, maxOutputChars: job.maxOutputChars };
  try {
    const out = t.render(job.context);
    if (out.length > job.maxOutputChars)
      throw new LimitReached(`its output is longer than ${job.maxOutputChars} characters`);
    return out;
  } catch (error) {
    if (error instanceof LimitReached) throw new Error(`the chat template was stopped: ${error.message}`);
    throw new Error(`the chat template failed on these messages: ${(error as Error).message}`);
  }
}

parentPort?.on("message", (job: JinjaJob) => {
  try {
    parentPort!.postMessage({ id: job.id, result: render(job) });
  } catch (error) {
    parentPort!.postMessage({ id: job.id, error: { message: (error as Error).message } });
  }
});

parentPort?.postMessage({ ready: true });
