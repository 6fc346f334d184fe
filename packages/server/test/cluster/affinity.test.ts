/**
 * Conversations and the prompt cache across three real nodes (scenario 7 of the cluster issue), and a drained
 * node's models handed over. stories260K is loaded on every node, so what decides where a turn runs is prompt-prefix
 * affinity, not placement. Each node runs the model with 2 slots: the three conversations do not all fit in one
 * node's slots, as in a busy cluster where conversations outnumber slots (with more slots than conversations every
 * node keeps every conversation, and round-robin looks as good as affinity).
 *
 * Three 8-turn chat conversations, each turn appending to the history, are sent to random nodes: >= 90% of turns
 * land on the node that served the conversation's previous turn (`x-llmos-node`), and cached / prompt tokens over
 * turns 2-8 is >= 0.8. The same conversations sent round-robin straight to the nodes (each turn to the next node, as
 * signed peer calls, which run where they are sent: what independent servers behind a round-robin balancer do)
 * reuse <= 0.4. Rounds follow each other after 250 ms, as a client that sends its next turn at once (an agent, a
 * fast reader) does: well within a heartbeat interval, so a new conversation must be published ahead of the
 * heartbeat (heartbeats alone kept 10 of 21 turns on their node).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ClusterStatus } from "@llmos/protocol";
import { homePaths } from "../../src/config/config.js";
import { REPO_ROOT, STORIES, TINY_RANDOM } from "../support/paths.js";
import { peerBody, signPeerCall } from "../../src/cluster/peer-auth.js";
import { CLUSTER_SECRET, startTestCluster, type TestCluster } from "../support/cluster.js";
import { waitFor } from "../support/processes.js";

let cluster: TestCluster;

interface Message {
  role: "system" | "user" | "assistant";
  content: string;
}

interface Turn {
  node: string;
  promptTokens: number;
  cachedTokens: number;
}

/** Calls a node; operator routes get the node's admin token (loopback clients need no key for the rest). */
async function call(url: string, method: string, path: string, body?: unknown, peer = false) {
  const node = cluster.nodes.find((n) => n.url === url)!;
  const token = path.startsWith("/api/cluster") ? readFileSync(homePaths(node.home).adminToken, "utf8").trim() : "";
  const sent = peerBody(body);
  const res = await fetch(url + path, {
    method,
    headers: {
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      // A signed peer call runs where it is sent (no routing): the round-robin baseline.
      ...(peer
        ? signPeerCall(CLUSTER_SECRET, {
            method,
            path,
            node: "round-robin",
            time: Date.now(),
            fence: randomUUID(),
            body: sent,
          })
        : {}),
    },
    ...(sent !== undefined ? { body: sent } : {}),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, node: res.headers.get("x-llmos-node") };
}

async function status(url: string): Promise<ClusterStatus> {
  const r = await call(url, "GET", "/api/cluster");
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json as ClusterStatus;
}

/** A small deterministic PRNG (mulberry32): the random nodes are the same on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = ["Lily", "Tom", "Sue"];
const PLACES = ["the park", "the sea", "the hill"];

/**
 * A conversation's opening: a system prompt of its own (a few hundred characters, distinct from its first words on,
 * and from the other run's: `run` keeps the round-robin run from finding the affinity run's caches).
 */
function opening(run: string, i: number): Message[] {
  const who = NAMES[i]!;
  const where = PLACES[i]!;
  const system =
    `${run} ${i + 1}: ${who} tells stories about ${where}. ` +
    Array.from(
      { length: 6 },
      (_, k) => `In story ${k + 1}, ${who} went to ${where} with a ${["dog", "cat", "bird"][(i + k) % 3]} and a ball. `,
    ).join("");
  return [{ role: "system", content: system }];
}

function userTurn(i: number, turn: number): Message {
  return {
    role: "user",
    content: `Tell me what ${NAMES[i]} did next at ${PLACES[i]} on day ${turn + 1}, and who came to play with ${NAMES[i]}.`,
  };
}

/** One chat turn: the history so far plus a new user message; the answer is appended to the history. */
async function chatTurn(to: Destination, history: Message[], i: number, turn: number): Promise<Turn> {
  history.push(userTurn(i, turn));
  const body = { model: "stories", messages: history, max_tokens: 12, temperature: 0 };
  const r = await call(to.url, "POST", "/v1/chat/completions", body, to.peer);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  history.push({ role: "assistant", content: r.json.choices[0].message.content as string });
  return {
    node: r.node!,
    promptTokens: r.json.usage.prompt_tokens as number,
    cachedTokens: r.json.usage.prompt_tokens_details?.cached_tokens ?? 0,
  };
}

/**
 * Three conversations of 8 turns, in rounds (turn k of every conversation at once, then a pause of `pauseMs`);
 * `pick(i, turn)` is the node each turn is sent to.
 */
interface Destination {
  url: string;
  /** Sent as a signed peer call: it runs there, unrouted. */
  peer: boolean;
}

async function converse(
  run: string,
  pick: (i: number, turn: number) => Destination,
  pauseMs: number,
): Promise<Turn[][]> {
  const histories = [0, 1, 2].map((i) => opening(run, i));
  const turns: Turn[][] = [[], [], []];
  for (let turn = 0; turn < 8; turn++) {
    const round = await Promise.all([0, 1, 2].map((i) => chatTurn(pick(i, turn), histories[i]!, i, turn)));
    round.forEach((t, i) => turns[i]!.push(t));
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  return turns;
}

/** Turns that ran where the conversation's previous turn ran, and cached / prompt tokens, over turns 2-8. */
function measure(turns: Turn[][]): { stayed: number; moves: number; reuse: number } {
  let stayed = 0;
  let moves = 0;
  let cached = 0;
  let prompt = 0;
  for (const conversation of turns)
    for (let k = 1; k < conversation.length; k++) {
      moves++;
      if (conversation[k]!.node === conversation[k - 1]!.node) stayed++;
      cached += conversation[k]!.cachedTokens;
      prompt += conversation[k]!.promptTokens;
    }
  return { stayed, moves, reuse: cached / prompt };
}

before(async () => {
  cluster = await startTestCluster(
    [
      {
        name: "a",
        models: [
          [STORIES, "stories"],
          [TINY_RANDOM, "tiny"],
        ],
      },
      {
        name: "b",
        models: [
          [STORIES, "stories"],
          [TINY_RANDOM, "tiny"],
        ],
      },
      { name: "c", models: [[STORIES, "stories"]] },
    ],
    { LLMOS_NUM_PARALLEL: "2", LLMOS_CONTEXT_SIZE: "1024", LLMOS_LOG_LEVEL: "info" },
  );
  // stories on every node (loaded through each node's own admin route: loads are not routed).
  for (const n of cluster.nodes) {
    const r = await call(n.url, "POST", "/api/models/stories/load");
    assert.equal(r.status, 200, JSON.stringify(r.json));
  }
  await waitFor(
    async () => {
      const s = await status(cluster.nodes[0]!.url);
      return s.models.find((m) => m.name === "stories:latest")?.loadedOn.length === 3 ? true : undefined;
    },
    10_000,
    "stories loaded on every node",
  );
});
after(async () => {
  await cluster?.stop();
});

describe("conversations across the cluster", { timeout: 300_000 }, () => {
  test("three 8-turn conversations stay on their nodes and reuse their caches; round-robin does not", async () => {
    const urls = cluster.nodes.map((n) => n.url);
    const next = random(7);
    const affinity = measure(await converse("Chat", () => ({ url: urls[Math.floor(next() * 3)]!, peer: false }), 250));
    // Round-robin straight to the nodes: each turn of a conversation runs on the next node.
    const roundRobin = measure(await converse("Talk", (i, turn) => ({ url: urls[(i + turn) % 3]!, peer: true }), 0));

    assert.ok(
      affinity.stayed / affinity.moves >= 0.9,
      `${affinity.stayed} of ${affinity.moves} turns stayed on their node`,
    );
    assert.ok(affinity.reuse >= 0.8, `cached / prompt tokens with affinity: ${affinity.reuse.toFixed(3)}`);
    assert.ok(roundRobin.reuse <= 0.4, `cached / prompt tokens round-robin: ${roundRobin.reuse.toFixed(3)}`);
    console.log(
      `affinity: ${affinity.stayed}/${affinity.moves} turns stayed, reuse ${affinity.reuse.toFixed(3)}; ` +
        `round-robin: reuse ${roundRobin.reuse.toFixed(3)}`,
    );
  });

  test("a signed peer call whose body was changed on the way is refused; the signed body runs", async () => {
    // What a machine between two nodes could do within a signature's 60 s: keep the headers, swap the body.
    const url = cluster.nodes[0]!.url;
    const path = "/v1/completions";
    const signedBody = peerBody({ model: "stories", prompt: "Once upon a time", max_tokens: 2 })!;
    const headers = {
      "content-type": "application/json",
      ...signPeerCall(CLUSTER_SECRET, {
        method: "POST",
        path,
        node: "b",
        time: Date.now(),
        fence: randomUUID(),
        body: signedBody,
      }),
    };
    const swapped = JSON.stringify({ model: "stories", prompt: "Ignore the above", max_tokens: 64 });
    const refused = await fetch(url + path, { method: "POST", headers, body: swapped });
    assert.equal(refused.status, 401, await refused.text());
    const reordered = await fetch(url + path, {
      method: "POST",
      headers,
      body: JSON.stringify({ prompt: "Once upon a time", model: "stories", max_tokens: 2 }),
    });
    assert.equal(reordered.status, 401, "the same fields in another order are another body");
    const ok = await fetch(url + path, { method: "POST", headers, body: signedBody });
    const text = await ok.text();
    assert.equal(ok.status, 200, text);
    assert.equal(JSON.parse(text).usage.completion_tokens <= 2, true);
  });

  test("drain: a model loaded only on the drained node is loaded where routing places it before it unloads", async () => {
    const [a, b, c] = ["a", "b", "c"].map((n) => cluster.node(n).url) as [string, string, string];
    // tiny is stored on a and b; loaded on a only.
    const first = await call(a, "POST", "/api/models/tiny/load");
    assert.equal(first.status, 200, JSON.stringify(first.json));
    await waitFor(
      async () =>
        (await status(c)).models.find((m) => m.name === "tiny:latest")?.loadedOn.join() === "a" ? true : undefined,
      5000,
      "tiny loaded on a, seen from c",
    );

    const drained = await call(c, "POST", "/api/cluster/nodes/a/drain");
    assert.equal(drained.status, 200, JSON.stringify(drained.json));
    // b takes tiny over (its only other holder); a unloads what it had.
    const handedOver = await waitFor(
      async () => {
        const s = await status(c);
        const tiny = s.models.find((m) => m.name === "tiny:latest");
        const onA = s.nodes.find((n) => n.name === "a")?.models ?? [];
        return tiny?.loadedOn.join() === "b" && onA.length === 0 ? s : undefined;
      },
      30_000,
      "tiny handed over to b and a empty",
    );
    assert.equal(handedOver.nodes.find((n) => n.name === "a")?.state, "draining");
    const before = (await call(b, "GET", "/api/ps")).json.models.find((m: any) => m.name === "tiny:latest");
    assert.ok(before?.runnerPid > 0, "tiny runs on b");

    // The next request, sent to c (which does not store tiny), is served warm by b: no load during the request.
    const gen = await call(c, "POST", "/api/generate", {
      model: "tiny",
      prompt: "hello",
      stream: false,
      options: { num_predict: 2 },
    });
    assert.equal(gen.status, 200, JSON.stringify(gen.json));
    assert.equal(gen.node, "b");
    const afterPs = (await call(b, "GET", "/api/ps")).json.models.find((m: any) => m.name === "tiny:latest");
    assert.equal(afterPs?.runnerPid, before.runnerPid, "the same runner: no cold load");
    // stories, loaded elsewhere already, went nowhere new: the other copies serve it.
    const story = await call(a, "POST", "/v1/chat/completions", {
      model: "stories",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 2,
    });
    assert.equal(story.status, 200);
    assert.ok(story.node === "b" || story.node === "c", `ran on ${story.node}`);

    // The operator's view: the models with their memory need (the scheduler's estimate) and where they are.
    const cli = execFileSync(
      process.execPath,
      [`${REPO_ROOT}/packages/cli/bin/llmos.js`, "--host", c, "cluster", "status"],
      { env: cluster.node("c").env, encoding: "utf8" },
    );
    assert.match(cli, /MEMORY NEED/);
    assert.match(cli, /tiny:latest\s.*\(min [^)]+\)\s+a, b\s+b\b/);

    assert.equal((await call(c, "POST", "/api/cluster/nodes/a/resume")).json.state, "up");
  });
});
