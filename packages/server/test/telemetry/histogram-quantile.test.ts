import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { bucketDelta, histogramQuantile } from "../../src/telemetry/histogram-quantile.js";

const b = (entries: Array<[number, number]>) => new Map(entries);

describe("histogram quantile (as Prometheus' histogram_quantile)", () => {
  it("interpolates inside the bucket that holds the rank", () => {
    // 10 observations: 4 at <= 0.1, 8 at <= 0.5, 10 at <= 1.
    const h = b([
      [0.1, 4],
      [0.5, 8],
      [1, 10],
      [Infinity, 10],
    ]);
    assert.equal(histogramQuantile(0.5, h), 0.1 + (0.4 * (5 - 4)) / 4);
    assert.equal(histogramQuantile(0.95, h), 0.5 + (0.5 * (9.5 - 8)) / 2);
    assert.equal(histogramQuantile(0.2, h), 0.05);
  });

  it("answers the highest finite bound for a rank in +Inf, and null without observations", () => {
    assert.equal(
      histogramQuantile(
        0.99,
        b([
          [1, 1],
          [Infinity, 10],
        ]),
      ),
      1,
    );
    assert.equal(histogramQuantile(0.5, b([[1, 0]])), null);
  });

  it("takes the observations between two samples", () => {
    const later = b([
      [1, 5],
      [Infinity, 7],
    ]);
    const earlier = b([
      [1, 2],
      [Infinity, 2],
    ]);
    assert.deepEqual(
      [...bucketDelta(later, earlier)],
      [
        [1, 3],
        [Infinity, 5],
      ],
    );
    assert.deepEqual([...bucketDelta(later, undefined)], [...later]);
  });
});
