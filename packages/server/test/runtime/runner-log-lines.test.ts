/**
 * Which of llama.cpp's log lines a real runner sends the daemon: all of them when the daemon logs at debug level,
 * only warnings and errors otherwise (the daemon writes the rest at debug level, so they would be dropped on
 * arrival; a load writes about 400).
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { ChildProcessRunner } from "../../src/runtime/child-process-runner.js";
import { RUNNER_ENTRY } from "../../src/runtime/child-process-runner-factory.js";
import { plainLaunch } from "../../src/runtime/sandbox/runner-launcher.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { STORIES_RUNNER_SPEC } from "../support/stories-runner.js";

/** Loads stories260K in a real runner whose logger is at `level`; returns the llama.cpp lines it logged, by level. */
async function llamaLinesAt(level: "debug" | "info"): Promise<{ debug: string[]; warn: string[] }> {
  const logger = createLogger(level, new Writable({ write: (_c, _e, cb) => cb() }));
  const seen = { debug: [] as string[], warn: [] as string[] };
  // What reaches the logger from the runner, whatever the logger then writes.
  const record = (into: string[]) => (fields: { llama?: boolean }, message: string) => {
    if (fields.llama) into.push(message);
  };
  logger.debug = record(seen.debug) as typeof logger.debug;
  logger.warn = record(seen.warn) as typeof logger.warn;
  const runner = new ChildProcessRunner(
    STORIES_RUNNER_SPEC,
    "stories",
    logger,
    plainLaunch(RUNNER_ENTRY, process.execArgv, process.env),
    0,
  );
  try {
    await runner.load(STORIES_RUNNER_SPEC);
    assert.ok(runner.facts.vocabSize > 0);
  } finally {
    await runner.stop();
  }
  return seen;
}

describe("runner log lines (real runner)", { timeout: 120_000 }, () => {
  test("below debug level, a load sends only llama.cpp's warnings", async () => {
    const seen = await llamaLinesAt("info");
    assert.deepEqual(seen.debug, [], "no line the daemon would drop");
    assert.ok(
      seen.warn.some((l) => l.includes("bad special token")),
      `stories260K's tokenizer warnings still arrive: ${JSON.stringify(seen.warn)}`,
    );
  });

  test("at debug level, every line of the load arrives", async () => {
    const seen = await llamaLinesAt("debug");
    assert.ok(seen.debug.length > 100, `${seen.debug.length} lines`);
    assert.ok(seen.debug.some((l) => l.includes("llama_model_loader")));
    assert.ok(seen.warn.some((l) => l.includes("bad special token")));
  });
});
