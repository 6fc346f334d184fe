import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { FakeRegistry } from "@llmos/test-support";
import { Ollama } from "ollama";
import { STORIES } from "../support/paths.js";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

/** The ollama client's error (its class is not in the ESM typings). */
type ResponseError = Error & { error: string; status_code: number };

const TEMPLATE = "{{ if .System }}{{ .System }} {{ end }}Once upon a time, {{ .Prompt }}";

function lines(text: string): Array<Record<string, any>> {
  return text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, any>);
}

describe("pull and push through an OCI registry, with the ollama client", () => {
  let registry: FakeRegistry;
  let d: TestDaemon;
  let ollama: Ollama;
  let manifestDigest: string;

  before(async () => {
    registry = await FakeRegistry.start();
    manifestDigest = registry.addModel("library/stories-chat", "latest", {
      model: STORIES,
      template: TEMPLATE,
      system: "In a small town,",
      params: { temperature: 0, num_predict: 16 },
      license: "MIT, for tests",
    }).manifestDigest;
    d = await startTestDaemon(
      {
        // The stand-in is the default registry, as a company mirror would be (plain http, allowed for it).
        ociRegistry: registry.url,
        pullAllowHttp: ["127.0.0.1"],
        ociAuth: { [registry.host]: { username: "pusher", password: "secret-password" } },
      },
      { importStories: false },
    );
    ollama = new Ollama({ host: d.url });
  });
  after(async () => {
    await d?.stop();
    await registry?.close();
  });

  test("ollama.pull of a library name streams Ollama's progress and registers the name as typed", async () => {
    const statuses: string[] = [];
    for await (const event of await ollama.pull({ model: "stories-chat", stream: true })) statuses.push(event.status);
    assert.equal(statuses[0], "pulling manifest");
    assert.ok(statuses.some((s) => /^pulling [0-9a-f]{12}$/.test(s)));
    assert.equal(statuses.at(-1), "success");
    const tags = await ollama.list();
    assert.ok(tags.models.some((m) => m.name === "stories-chat:latest"));
    // Pulling again downloads nothing: every blob is in the store.
    const before = registry.requestsTo("storage").length;
    const again = await ollama.pull({ model: "stories-chat" });
    assert.equal(again.status, "success");
    assert.equal(registry.requestsTo("storage").length, before);
  });

  test("the pulled model answers through its template, with its parameters", async () => {
    const chatty = await ollama.generate({ model: "stories-chat", prompt: "there was a little" });
    // The same text, rendered by hand and sent raw, gives the same greedy story: the template and the system
    // prompt were applied; temperature 0 and num_predict 16 came from the params layer.
    const raw = await ollama.generate({
      model: "stories-chat",
      prompt: "In a small town, Once upon a time, there was a little",
      raw: true,
    });
    assert.equal(chatty.response, raw.response);
    assert.ok(chatty.response!.length > 0);
    assert.equal(chatty.eval_count, 16);
    assert.equal(chatty.done_reason, "length");
    const show = await ollama.show({ model: "stories-chat" });
    assert.equal(show.template, TEMPLATE);
    assert.equal(show.system, "In a small town,");
    assert.match(show.parameters, /num_predict\s+16/);
    assert.equal(show.license, "MIT, for tests");
  });

  test("show tells where a model came from", async () => {
    const info = await api(d, "GET", "/api/models/stories-chat");
    assert.equal(info.status, 200);
    assert.deepEqual(info.json.origin, {
      registry: registry.host,
      repository: "library/stories-chat",
      tag: "latest",
      manifestDigest,
      mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    });
  });

  test("an unknown name or tag is a 404 status naming it; a later failure is the stream's last line", async () => {
    await assert.rejects(ollama.pull({ model: "nosuchmodel:7b" }), (e: ResponseError) => {
      assert.equal(e.status_code, 404);
      assert.match(e.error, /library\/nosuchmodel:7b/);
      return true;
    });
    // The manifest is fetched before the stream opens: a streamed pull of an unknown tag is a 404 too.
    const unknownTag = await api(d, "POST", "/api/models/pull", { reference: "stories-chat:99b" });
    assert.equal(unknownTag.status, 404);
    assert.equal(unknownTag.json.error.code, "not_found");
    assert.match(unknownTag.json.error.message, /library\/stories-chat:99b/);
    const corrupt = registry.addModel("library/corrupt", "latest", { model: STORIES, template: "x{{ .Prompt }}" });
    const weights = corrupt.layers.find((l) => l.mediaType === "application/vnd.ollama.image.model")!;
    registry.corrupt.add(weights.digest);
    await ollama.delete({ model: "stories-chat" }); // the weights must be downloaded again, not found in the store
    try {
      const streamed = await api(d, "POST", "/api/pull", { model: "corrupt" });
      assert.equal(streamed.status, 200);
      const events = lines(streamed.text);
      assert.equal(events[0]!.status, "pulling manifest");
      assert.match(events.at(-1)!.error, /sha256 mismatch/);
    } finally {
      registry.corrupt.clear();
      await ollama.pull({ model: "stories-chat" });
    }
    const refused = await api(d, "POST", "/api/models/pull", {
      reference: "oci://registry.example.invalid/team/m:1",
      insecure: true,
      stream: false,
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error.code, "invalid_reference");
  });

  test("push with the native API and with ollama.push, then pull back", async () => {
    const pushed = await api(d, "POST", "/api/models/push", {
      name: "stories-chat",
      reference: `oci://${registry.host}/team/shared:v1`,
      insecure: true,
    });
    assert.equal(pushed.status, 200);
    const final = lines(pushed.text).at(-1)!;
    assert.equal(final.status, "success");
    assert.equal(final.manifestDigest, registry.manifest("team/shared", "v1")?.digest);

    // Ollama pushes a model to where its name points: the default registry here.
    await ollama.copy({ source: "stories-chat", destination: "team/from-ollama:v2" });
    const viaOllama = await ollama.push({ model: "team/from-ollama:v2" });
    assert.equal(viaOllama.status, "success");
    assert.ok(registry.manifest("team/from-ollama", "v2"));

    await ollama.delete({ model: "team/from-ollama:v2" });
    const back = await ollama.pull({ model: "team/from-ollama:v2" });
    assert.equal(back.status, "success");
    const [a, b] = await Promise.all([
      ollama.show({ model: "team/from-ollama:v2" }),
      ollama.show({ model: "stories-chat" }),
    ]);
    assert.equal(a.template, b.template);
    assert.equal(a.parameters, b.parameters);
    const tags = await ollama.list();
    const digest = (n: string) => tags.models.find((m) => m.name === n)?.digest;
    assert.equal(digest("team/from-ollama:v2"), digest("stories-chat:latest"));
  });
});
