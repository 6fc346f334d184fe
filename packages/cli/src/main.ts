#!/usr/bin/env node
import { LlmosError } from "llmos";
import { buildProgram } from "./program.js";

/** One clear line per failure: the message and, for llmos errors, the stable code. */
function describeError(error: unknown): string {
  if (error instanceof LlmosError) return `Error: ${error.message} [${error.code}]`;
  if (error instanceof Error) return `Error: ${error.message}`;
  return `Error: ${String(error)}`;
}

const { program } = buildProgram(process.env);
try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`${describeError(error)}\n`);
  process.exitCode = 1;
}
