/** The HTTP side's drain: many requests in flight listen on its one cancel signal without a leak warning. */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import type { FastifyReply, FastifyRequest } from "fastify";
import { Drain } from "../../src/http/drain.js";
import { clientGone } from "../../src/http/request-context.js";

/** Just what `Drain.onRequest` and `clientGone` touch of a request and its reply. */
function fakeExchange(): { request: FastifyRequest; reply: FastifyReply; end: () => void } {
  const raw = Object.assign(new EventEmitter(), { writableFinished: false });
  const request = { raw: new EventEmitter(), drainSignal: null } as unknown as FastifyRequest;
  const reply = { raw, header: () => reply } as unknown as FastifyReply;
  return { request, reply, end: () => ((raw.writableFinished = true), raw.emit("close")) };
}

test("50 requests in flight at once: no MaxListenersExceededWarning, and each gets the drain's cancellation", async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on("warning", onWarning);
  try {
    const drain = new Drain();
    const exchanges = Array.from({ length: 50 }, fakeExchange);
    const signals: AbortSignal[] = [];
    for (const x of exchanges) {
      await drain.onRequest(x.request, x.reply);
      signals.push(clientGone(x.request, x.reply));
    }
    assert.equal(drain.inFlight, 50);
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    assert.deepEqual(
      warnings.filter((w) => w.name === "MaxListenersExceededWarning").map((w) => w.message),
      [],
    );
    for (const x of exchanges.slice(0, 25)) x.end();
    assert.equal(drain.inFlight, 25);
    assert.ok(signals.every((s) => !s.aborted));
  } finally {
    process.off("warning", onWarning);
  }
});
