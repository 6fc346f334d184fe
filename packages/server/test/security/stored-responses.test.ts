import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { LlmosError } from "../../src/errors.js";
import { SqliteSecurityRepository, StoredResponses } from "../../src/security/index.js";

describe("stored responses (SQLite)", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "llmos-responses-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const notFound = (e: unknown) => e instanceof LlmosError && e.code === "not_found";

  test("owned by the creating key, expire after the TTL, removed once expired; survive a reopen", async () => {
    const file = path.join(dir, "llmos.db");
    let now = 1_000_000;
    const repo = SqliteSecurityRepository.open(file);
    const stored = new StoredResponses(repo.responses, 30 * 86_400_000, () => now);
    const conversation = [{ role: "user", content: "hi" }];
    await stored.save({ id: "resp_a", keyId: "k1", model: "m:latest", response: { id: "resp_a" }, conversation });
    await stored.save({ id: "resp_anon", keyId: null, model: "m:latest", response: { id: "resp_anon" }, conversation });
    assert.deepEqual((await stored.get("resp_a", "k1")).conversation, conversation);
    await assert.rejects(stored.get("resp_a", "k2"), notFound);
    await assert.rejects(stored.get("resp_a", null), notFound);
    await assert.rejects(stored.get("resp_anon", "k1"), notFound);
    assert.equal((await stored.get("resp_anon", null)).keyId, null);
    await assert.rejects(stored.delete("resp_a", "k2"), notFound);
    await repo.close();

    const reopened = SqliteSecurityRepository.open(file);
    const again = new StoredResponses(reopened.responses, 30 * 86_400_000, () => now);
    assert.equal((await again.get("resp_a", "k1")).model, "m:latest");
    now += 30 * 86_400_000 - 1;
    assert.ok(await again.get("resp_a", "k1"), "kept until the TTL");
    now += 1;
    await assert.rejects(again.get("resp_a", "k1"), notFound);
    // Saving a new one purges expired rows.
    await again.save({ id: "resp_b", keyId: "k1", model: "m:latest", response: {}, conversation: [] });
    assert.equal(await reopened.responses.get("resp_a", 0), undefined);
    await again.delete("resp_b", "k1");
    await assert.rejects(again.get("resp_b", "k1"), notFound);
    await reopened.close();
  });
});
