/**
 * How much a child process (a runner, a model-tool worker) may write into the daemon's log over IPC: at most
 * `lines` lines per `windowMs`, each cut to `maxChars`. Past the budget the rest of the window is dropped: the first
 * dropped line is said once, and how many were dropped is said with the next line that passes. llama.cpp writes a
 * few hundred lines while it loads a model; a process that a hostile model file took over could otherwise flood the
 * log (and the disk under it) as fast as the IPC channel carries.
 */
import type { RunnerLogLines } from "../runner/ipc-protocol.js";

export interface LogVerdict {
  /** Log the line (cut to the budget's length). */
  line: string | null;
  /** Say that lines are being dropped from now on (once per window). */
  startsDropping: boolean;
  /** Lines dropped since the last one that passed (say it with this line). */
  dropped: number;
}

export class LogBudget {
  private windowStart = -Infinity;
  private used = 0;
  private dropped = 0;

  constructor(
    private readonly lines = 1000,
    private readonly windowMs = 10_000,
    private readonly maxChars = 4096,
    private readonly now: () => number = Date.now,
  ) {}

  take(message: unknown): LogVerdict {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.windowStart = t;
      this.used = 0;
    }
    if (this.used >= this.lines) {
      this.dropped++;
      return { line: null, startsDropping: this.dropped === 1, dropped: 0 };
    }
    this.used++;
    const dropped = this.dropped;
    this.dropped = 0;
    const text = typeof message === "string" ? message : String(message);
    return {
      line: text.length > this.maxChars ? `${text.slice(0, this.maxChars)}…` : text,
      startsDropping: false,
      dropped,
    };
  }
}

/** Logs one line of a child process through `budget` (see LogBudget) at the level it asked for. */
export function logThroughBudget(
  budget: LogBudget,
  logger: {
    error(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
    debug(obj: object, msg: string): void;
  },
  fields: object,
  level: unknown,
  message: unknown,
): void {
  const v = budget.take(message);
  if (v.startsDropping) logger.warn(fields, "log lines over this process's budget: dropping the rest of this window");
  if (v.line === null) return;
  if (v.dropped > 0) logger.warn({ ...fields, dropped: v.dropped }, "log lines were dropped (over the budget)");
  logger[level === "error" ? "error" : level === "warn" ? "warn" : "debug"](fields, v.line);
}

/**
 * Which lines a runner should send (see RunnerLogLines): a child's lines other than warnings and errors are written
 * at debug level (above), so below debug the runner keeps them.
 */
export function runnerLogLines(logger: { isLevelEnabled(level: string): boolean }): RunnerLogLines {
  return logger.isLevelEnabled("debug") ? "all" : "warnings";
}
