/**
 * What every UsageRepository must do, as one list of tests run against each implementation (memory, SQLite, a real
 * PostgreSQL): records read back exactly, `save` replaces, `add` merges under a lock (two writers on one store both
 * count), a failing merge changes nothing, a corrupt row is refused naming the model and the column.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { StoredModelUsage, UsageMerge, UsageRepository } from "../../src/usage-store/index.js";
import { UsageStoreCorruptError } from "../../src/usage-store/index.js";

export interface ContractStore {
  repo: UsageRepository;
  /** Another writer on the same store (another connection, pool or process's view of it). */
  other(): Promise<UsageRepository>;
  /** Makes the stored `hourly` of `model` unreadable behind the repository's back; undefined: cannot be corrupted. */
  corrupt?: (model: string) => Promise<void>;
  /** Closes everything `other` opened and removes the store. */
  dispose(): Promise<void>;
}

export function record(model: string, over: Partial<StoredModelUsage> = {}): StoredModelUsage {
  return {
    model,
    layout: 1,
    gaps: [0.1, 2.5, 0, 1 / 3],
    hourly: [1, 0, 0.25],
    requests: 3.75,
    loadMs: 123.456,
    sizeBytes: 81 * 1024 * 1024,
    firstSeen: Date.UTC(2026, 0, 1),
    lastArrival: Date.UTC(2026, 0, 2, 3, 4, 5),
    updatedAt: Date.UTC(2026, 0, 2, 3, 4, 6),
    ...over,
  };
}

/** Adds weights and requests, keeps the later time: enough to see that no batch is lost. */
const sum: UsageMerge = (stored, batch) =>
  stored
    ? {
        ...stored,
        gaps: stored.gaps.map((w, i) => w + batch.gaps[i]!),
        requests: stored.requests + batch.requests,
        updatedAt: Math.max(stored.updatedAt, batch.updatedAt),
      }
    : batch;

export function usageRepositoryContract(name: string, open: () => Promise<ContractStore>): void {
  describe(`UsageRepository contract: ${name}`, () => {
    const withStore = async (fn: (s: ContractStore) => Promise<void>) => {
      const s = await open();
      try {
        await fn(s);
      } finally {
        await s.dispose();
      }
    };

    test("a new store is empty; saved records read back exactly, by model name; save replaces", () =>
      withStore(async ({ repo }) => {
        assert.deepEqual(await repo.loadAll(), []);
        const b = record("b:latest", { loadMs: null, sizeBytes: null, lastArrival: null });
        const a = record("a:latest");
        await repo.save([b, a]);
        assert.deepEqual(await repo.loadAll(), [a, b]);
        const a2 = record("a:latest", { requests: 9, gaps: [1, 2, 3, 4] });
        await repo.save([a2]);
        assert.deepEqual(await repo.loadAll(), [a2, b]);
      }));

    test("add: a first batch goes through merge(undefined), later ones merge into the stored record", () =>
      withStore(async ({ repo }) => {
        const seen: Array<StoredModelUsage | undefined> = [];
        const merge: UsageMerge = (s, b) => (seen.push(s), sum(s, b));
        const first = record("m:latest", { requests: 1 });
        assert.deepEqual(await repo.add([first], merge), [first]);
        assert.equal(seen[0], undefined);
        const back = await repo.add([record("m:latest", { requests: 2, updatedAt: first.updatedAt + 1000 })], merge);
        assert.deepEqual(seen[1], first, "the merge sees the stored record");
        assert.equal(back[0]!.requests, 3);
        assert.equal(back[0]!.updatedAt, first.updatedAt + 1000);
        assert.deepEqual(await repo.loadAll(), back);
      }));

    test("two writers adding to the same model at once both count", () =>
      withStore(async ({ repo, other }) => {
        const second = await other();
        const batch = (i: number) => record("shared:latest", { requests: 1, gaps: [1, 0, 0, 0], updatedAt: 1000 + i });
        await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 ? second : repo).add([batch(i), record(`own${i % 2}`)], sum)),
        );
        const all = await repo.loadAll();
        const shared = all.find((r) => r.model === "shared:latest")!;
        assert.equal(shared.requests, 20, "every batch counted once");
        assert.equal(shared.gaps[0], 20);
        assert.deepEqual(
          all.map((r) => r.model),
          ["own0", "own1", "shared:latest"],
        );
        assert.deepEqual(await second.loadAll(), all, "both writers read the same records");
      }));

    test("a merge that throws fails the whole add and changes nothing", () =>
      withStore(async ({ repo }) => {
        await repo.save([record("a:latest"), record("b:latest")]);
        const before = await repo.loadAll();
        const failing: UsageMerge = (s, b) => {
          if (b.model === "b:latest") throw new UsageStoreCorruptError("cannot merge b");
          return sum(s, b);
        };
        await assert.rejects(repo.add([record("a:latest"), record("b:latest")], failing), /cannot merge b/);
        assert.deepEqual(await repo.loadAll(), before);
      }));

    test("a corrupt row is refused, naming the model and the column", async (t) => {
      await withStore(async ({ repo, corrupt }) => {
        if (!corrupt) return t.skip("nothing to corrupt in memory");
        await repo.save([record("a:latest")]);
        await corrupt("a:latest");
        await assert.rejects(repo.loadAll(), (e: unknown) => {
          assert.ok(e instanceof UsageStoreCorruptError);
          assert.match(e.message, /"a:latest".*hourly is not JSON/);
          return true;
        });
        await assert.rejects(repo.add([record("a:latest")], sum), UsageStoreCorruptError);
      });
    });

    test("close is idempotent", () =>
      withStore(async ({ repo }) => {
        await repo.close();
        await repo.close();
      }));
  });
}
