/** What a child process may write into the daemon's log: lines per window, their length, and what is said of the rest. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LogBudget, logThroughBudget } from "../../src/runtime/log-budget.js";

describe("log budget", () => {
  test("lines past the budget are dropped for the rest of the window, said once, and counted with the next line", () => {
    let now = 1000;
    const budget = new LogBudget(3, 10_000, 8, () => now);
    const said: string[] = [];
    const logger = {
      error: (_: object, msg: string) => said.push(`error ${msg}`),
      warn: (o: object, msg: string) => said.push(`warn ${msg}${"dropped" in o ? ` (${String(o.dropped)})` : ""}`),
      debug: (_: object, msg: string) => said.push(`debug ${msg}`),
    };
    for (let i = 0; i < 6; i++) logThroughBudget(budget, logger, {}, i === 0 ? "error" : "info", `line ${i}`);
    assert.deepEqual(said, [
      "error line 0",
      "debug line 1",
      "debug line 2",
      "warn log lines over this process's budget: dropping the rest of this window",
    ]);
    now += 10_000;
    logThroughBudget(budget, logger, {}, "warn", "a line far longer than eight characters");
    assert.deepEqual(said.slice(4), ["warn log lines were dropped (over the budget) (3)", "warn a line f…"]);
    logThroughBudget(budget, logger, {}, "warn", { not: "a string" });
    assert.equal(said.at(-1), "warn [object …");
  });
});
