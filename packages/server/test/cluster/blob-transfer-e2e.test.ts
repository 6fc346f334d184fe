/**
 * Scenario 6 on three real `llmos serve --cluster` processes and a real PostgreSQL (test/support/cluster.ts): nodes
 * a and b store the models but their memory budgets hold none of them; node c stores nothing and has the memory, so
 * requests run on c, which fetches the blobs from a peer. The 42M model was pulled by a and b from an origin (a URL
 * on loopback) that is shut down before c needs it; the others were imported. Also: the peer blob route as an
 * attacker and a peer see it, a peer serving corrupt bytes refused, a request forwarded to the node that copies the
 * model, and a transfer whose peer is killed halfway resumed from the other peer.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import type { ClusterStatus } from "@llmos/protocol";
import { homePaths } from "../../src/config/config.js";
import { signPeerCall } from "../../src/cluster/peer-auth.js";
import { writeGgufWith } from "../support/gguf-copy.js";
import { CLUSTER_SECRET, startTestCluster, type TestCluster } from "../support/cluster.js";
import { waitFor } from "../support/processes.js";
import { synth42m } from "../support/quantize.js";
import { slowModel, SYNTH_DIR } from "../support/synth.js";

let cluster: TestCluster;
let adminKey = "";
const files: Record<"m42" | "kill" | "corrupt" | "forward" | "load", { file: string; digest: string; size: number }> =
  {} as never;

/** A copy of `src` with one metadata value changed: the same model under another digest. */
async function variant(src: string, name: string): Promise<string> {
  const file = path.join(SYNTH_DIR, `${name}.gguf`);
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    await writeGgufWith(src, tmp, { "general.name": name });
    renameSync(tmp, file);
  }
  return file;
}

function describeFile(file: string) {
  const bytes = readFileSync(file);
  return { file, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`, size: bytes.length };
}

function blobPath(node: string, digest: string): string {
  return path.join(homePaths(cluster.node(node).home).models, "blobs", digest.replace(":", "-"));
}

function sha256Of(file: string): string {
  return `sha256:${createHash("sha256").update(readFileSync(file)).digest("hex")}`;
}

async function status(node: string): Promise<ClusterStatus> {
  const res = await fetch(`${cluster.node(node).url}/api/cluster`, {
    headers: { authorization: `Bearer ${adminKey}` },
  });
  assert.equal(res.status, 200);
  return (await res.json()) as ClusterStatus;
}

/** `llmos_cluster_blob_transfer_bytes_total` of node c, by peer. */
async function receivedBy(node: string): Promise<Record<string, number>> {
  const res = await fetch(`${cluster.node(node).url}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } });
  const out: Record<string, number> = {};
  for (const m of (await res.text()).matchAll(/^llmos_cluster_blob_transfer_bytes_total\{([^}]*)\} (\d+)/gm)) {
    const peer = /peer="([^"]+)"/.exec(m[1]!)![1]!;
    out[peer] = Number(m[2]);
  }
  return out;
}

async function generate(model: string, stream = false, node = "c") {
  const res = await fetch(`${cluster.node(node).url}/api/generate`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${adminKey}` },
    body: JSON.stringify({ model, prompt: "Once upon a time", stream, options: { num_predict: 3, temperature: 0 } }),
  });
  return { status: res.status, node: res.headers.get("x-llmos-node"), text: await res.text() };
}

before(async () => {
  const m42 = await synth42m();
  files.m42 = describeFile(m42);
  files.kill = describeFile(await variant(m42, "llmos-test-42m-resume"));
  files.corrupt = describeFile(await variant(await slowModel(), "llmos-test-slow-corrupt"));
  files.forward = describeFile(await variant(await slowModel(), "llmos-test-slow-forward"));
  files.load = describeFile(await variant(await slowModel(), "llmos-test-slow-load"));
  const models: Array<[string, string]> = [
    [files.kill.file, "m42resume"],
    [files.corrupt.file, "slowcorrupt"],
    [files.forward.file, "slowforward"],
    [files.load.file, "slowload"],
  ];
  // a sends slowly enough to be killed halfway; b and c do not limit transfers.
  cluster = await startTestCluster(
    [
      { name: "a", budget: "24M", models, env: { LLMOS_CLUSTER_TRANSFER_RATE: "24M" } },
      { name: "b", budget: "24M", models, env: { LLMOS_CLUSTER_TRANSFER_RATE: "0" } },
      { name: "c", env: { LLMOS_CLUSTER_TRANSFER_RATE: "0" } },
    ],
    { LLMOS_PULL_ALLOW_HTTP: "127.0.0.1" },
  );
  // The 42M model's origin: a and b pull it from there, then it goes away.
  const bytes = readFileSync(files.m42.file);
  const origin = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes.length }).end(bytes);
  });
  await new Promise<void>((r) => origin.listen(0, "127.0.0.1", r));
  const originUrl = `http://127.0.0.1:${(origin.address() as { port: number }).port}/llama-42m.gguf`;
  const token = readFileSync(homePaths(cluster.node("a").home).adminToken, "utf8").trim();
  const made = await fetch(`${cluster.node("a").url}/api/keys`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ name: "admin", scopes: ["admin"] }),
  });
  assert.equal(made.status, 201);
  adminKey = ((await made.json()) as { secret: string }).secret;
  for (const n of ["a", "b"]) {
    const pulled = await fetch(`${cluster.node(n).url}/api/models/pull`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${adminKey}` },
      body: JSON.stringify({ reference: originUrl, name: "m42", stream: false }),
    });
    assert.equal(pulled.status, 200, await pulled.text());
  }
  origin.closeAllConnections();
  await new Promise((r) => origin.close(r));
  // c knows where the models are once a and b have published them.
  await waitFor(
    async () => ((await status("c")).models.filter((m) => m.storedOn.length === 2).length === 5 ? true : undefined),
    15_000,
    "models stored on a and b seen from c",
  );
});
after(async () => {
  await cluster?.stop();
});

describe("blob transfer between nodes (scenario 6)", { timeout: 180_000 }, () => {
  test("the peer blob route answers signed peer calls only, by digest, with byte ranges", async () => {
    const b = cluster.node("b").url;
    const { digest, size } = files.m42;
    const route = `/api/cluster/peer/blobs/${digest}`;
    const signed = (p: string, method = "GET") =>
      signPeerCall(CLUSTER_SECRET, { method, path: p, node: "c", time: Date.now() });
    const token = readFileSync(homePaths(cluster.node("b").home).adminToken, "utf8").trim();

    assert.equal((await fetch(b + route)).status, 401, "no credential");
    assert.equal((await fetch(b + route, { headers: { authorization: `Bearer ${adminKey}` } })).status, 403, "API key");
    assert.equal(
      (await fetch(b + route, { headers: { authorization: `Bearer ${token}` } })).status,
      403,
      "admin token",
    );
    const fromBrowser = await fetch(b + route, { headers: { ...signed(route), origin: b } });
    assert.equal(fromBrowser.status, 401, "a signed call with an Origin");
    const replayed = `/api/cluster/peer/blobs/${files.corrupt.digest}`;
    assert.equal((await fetch(b + replayed, { headers: signed(route) })).status, 401, "signature of another path");

    const head = await fetch(b + route, { method: "HEAD", headers: signed(route, "HEAD") });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(size));
    assert.equal(head.headers.get("etag"), `"${digest}"`);
    assert.equal(head.headers.get("accept-ranges"), "bytes");
    const part = await fetch(b + route, { headers: { ...signed(route), range: "bytes=100-199" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), `bytes 100-199/${size}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), readFileSync(files.m42.file).subarray(100, 200));
    const past = await fetch(b + route, { headers: { ...signed(route), range: `bytes=${size + 10}-` } });
    assert.equal(past.status, 416);
    await past.arrayBuffer();

    for (const bad of ["sha256:xyz", "..%2F..%2Fllmos.db", "sha256-" + "0".repeat(64)]) {
      const p = `/api/cluster/peer/blobs/${bad}`;
      const res = await fetch(b + p, { headers: signed(p) });
      assert.equal(res.status, 400, bad);
    }
    const missing = `/api/cluster/peer/blobs/sha256:${"0".repeat(64)}`;
    assert.equal((await fetch(b + missing, { headers: signed(missing) })).status, 404);
    const manifest = "/api/cluster/peer/manifest?model=m42";
    const m = await fetch(b + manifest, { headers: signed(manifest) });
    assert.equal(m.status, 200);
    assert.equal(((await m.json()) as { model: { digest: string } }).model.digest, digest);
    assert.equal((await fetch(b + manifest)).status, 401);
  });

  test("with the origin unreachable, c gets the 42M model's blob from a peer with a valid sha256 and answers", async () => {
    const r = await generate("m42");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.node, "c");
    assert.ok(JSON.parse(r.text).response.length > 0);
    assert.equal(sha256Of(blobPath("c", files.m42.digest)), files.m42.digest);
    const received = await receivedBy("c");
    assert.equal((received.a ?? 0) + (received.b ?? 0), files.m42.size, JSON.stringify(received));
    assert.deepEqual((await status("c")).transfers, []);
    assert.ok(!cluster.node("c").logs.some((l) => l.includes("from its origin")), "the origin was not asked");
    // Published with c's next heartbeat: the model is stored on all three nodes now.
    await waitFor(
      async () =>
        (await status("a")).models.find((m) => m.name === "m42:latest")?.storedOn.length === 3 ? true : undefined,
      5000,
      "c publishes the model it fetched",
    );
  });

  test("a peer that serves corrupt bytes is refused (sha256 mismatch) and the blob comes from the other peer", async () => {
    const { digest, size } = files.corrupt;
    const before = await receivedBy("c");
    // Corrupt a's copy in the middle (the peer serves what its disk holds; its size stays right).
    const fd = openSync(blobPath("a", digest), "r+");
    writeSync(fd, Buffer.from("corrupt!"), 0, 8, Math.floor(size / 2));
    closeSync(fd);
    const r = await generate("slowcorrupt");
    assert.equal(r.status, 200, r.text);
    assert.equal(sha256Of(blobPath("c", digest)), digest);
    const after = await receivedBy("c");
    assert.equal((after.a ?? 0) - (before.a ?? 0), size, "a sent the whole (corrupt) blob first");
    assert.equal((after.b ?? 0) - (before.b ?? 0), size, "b sent it again, from the start");
    assert.ok(cluster.node("c").logs.some((l) => l.includes("sha256 does not match") && l.includes('"peer":"a"')));
  });

  test("a request sent to a node that stores the model without the memory for it is forwarded to c, which copies it", async () => {
    // b stores the model, but only c has the memory: b routes it to c (best memory fit), c copies the blob from a
    // peer, runs it once, and the answer comes back through b.
    const r = await generate("slowforward", false, "b");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.node, "c");
    assert.ok(JSON.parse(r.text).response.length > 0);
    assert.equal(sha256Of(blobPath("c", files.forward.digest)), files.forward.digest);
    const ran = cluster
      .node("c")
      .logs.filter((l) => l.includes("model fetched from peers") && l.includes("slowforward"));
    assert.equal(ran.length, 1);
  });

  test("an explicit load on a node without the model copies it from a peer first", async () => {
    const res = await fetch(`${cluster.node("c").url}/api/models/slowload/load`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminKey}` },
    });
    assert.equal(res.status, 200, await res.text());
    assert.equal(sha256Of(blobPath("c", files.load.digest)), files.load.digest);
    const ps = await fetch(`${cluster.node("c").url}/api/ps`, { headers: { authorization: `Bearer ${adminKey}` } });
    const models = ((await ps.json()) as { models: Array<{ name: string }> }).models.map((m) => m.name);
    assert.ok(models.includes("slowload:latest"), JSON.stringify(models));
  });

  test("a transfer whose peer is killed halfway resumes from the other peer where it stopped; a stream waits for it", async () => {
    const { digest, size } = files.kill;
    const before = await receivedBy("c");
    const pending = generate("m42resume", true);
    // a sends at 24 MiB/s: kill it once a good part (not all) of the blob has come.
    await waitFor(
      async () => {
        const t = (await status("c")).transfers?.find((x) => x.model === "m42resume:latest");
        return t && t.peer === "a" && t.completedBytes > size / 4 ? true : undefined;
      },
      30_000,
      "the transfer from a under way",
    );
    cluster.node("a").process.kill("SIGKILL");
    const r = await pending;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.node, "c");
    const lines = r.text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { done?: boolean; response?: string });
    assert.ok(lines.at(-1)?.done, r.text);
    assert.equal(sha256Of(blobPath("c", digest)), digest);
    const after = await receivedBy("c");
    const fromA = (after.a ?? 0) - (before.a ?? 0);
    const fromB = (after.b ?? 0) - (before.b ?? 0);
    assert.ok(fromA > 0 && fromA < size, `from a: ${fromA}`);
    assert.equal(fromA + fromB, size, "no byte came twice");
    // b was asked for the rest only: a Range starting where a stopped.
    const served = cluster
      .node("b")
      .logs.filter((l) => l.includes("sending a blob to a peer") && l.includes(digest))
      .map((l) => JSON.parse(l) as { range: string | null });
    assert.deepEqual(
      served.map((s) => s.range),
      [`bytes ${fromA}-${size - 1}/${size}`],
    );
  });
});
