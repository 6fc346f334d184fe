import { test } from "node:test";
import assert from "node:assert/strict";
import { formatBytes, formatRelative, parseDuration, parseSince, renderTable, shortDigest } from "../src/format.js";

test("formatBytes uses decimal units", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(1_234_567), "1.2 MB");
  assert.equal(formatBytes(4_100_000_000), "4.1 GB");
  assert.equal(formatBytes(undefined), "-");
});

test("formatRelative speaks in the past and the future", () => {
  const now = Date.parse("2026-01-01T12:00:00Z");
  assert.equal(formatRelative("2026-01-01T11:57:00Z", now), "3 minutes ago");
  assert.equal(formatRelative("2026-01-01T12:04:00Z", now), "in 4 minutes");
  assert.equal(formatRelative("2025-12-30T12:00:00Z", now), "2 days ago");
  assert.equal(formatRelative(null, now), "Forever");
});

test("durations and --since", () => {
  assert.equal(parseDuration("30d"), 30 * 86_400_000);
  assert.equal(parseDuration("90m"), 5_400_000);
  assert.throws(() => parseDuration("soon"));
  const now = Date.parse("2026-01-01T12:00:00Z");
  assert.equal(parseSince("1h", now), "2026-01-01T11:00:00.000Z");
  assert.equal(parseSince("2026-01-01T00:00:00Z", now), "2026-01-01T00:00:00.000Z");
});

test("renderTable aligns columns without borders", () => {
  const out = renderTable(
    ["NAME", "SIZE"],
    [
      ["stories:latest", "1.2 MB"],
      ["a", "5 B"],
    ],
  ).split("\n");
  assert.equal(out.length, 3);
  assert.equal(out[0]!.indexOf("SIZE"), out[1]!.indexOf("1.2 MB"));
  assert.equal(shortDigest("sha256:0123456789abcdef"), "0123456789ab");
});
