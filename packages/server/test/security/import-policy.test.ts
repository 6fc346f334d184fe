import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { isLlmosError } from "../../src/errors.js";
import { ImportPolicy } from "../../src/security/index.js";
import { tempHome } from "./helpers.js";

describe("import path policy", () => {
  let root: string;
  let cleanup: () => void;
  let allowed: string;
  before(() => {
    ({ home: root, cleanup } = tempHome());
    allowed = path.join(root, "models");
    fs.mkdirSync(allowed);
    fs.writeFileSync(path.join(allowed, "a.gguf"), "x");
    fs.writeFileSync(path.join(root, "outside.gguf"), "secret");
    fs.symlinkSync(path.join(root, "outside.gguf"), path.join(allowed, "link.gguf"));
    fs.symlinkSync(root, path.join(allowed, "up"));
  });
  after(() => cleanup());

  const refused = (e: unknown) => isLlmosError(e) && e.code === "path_not_allowed" && e.status === 403;

  test("nothing is importable by path by default", async () => {
    const p = new ImportPolicy([]);
    await assert.rejects(p.resolve(path.join(allowed, "a.gguf")), refused);
    await assert.rejects(
      p.resolve("/etc/passwd"),
      (e: unknown) => refused(e) && /LLMOS_IMPORT_DIRS is empty/.test(String(e)),
    );
  });

  test("files inside a listed folder resolve to their real path", async () => {
    const p = new ImportPolicy([allowed]);
    assert.equal(await p.resolve(path.join(allowed, "a.gguf")), fs.realpathSync(path.join(allowed, "a.gguf")));
    await assert.rejects(
      p.resolve(path.join(allowed, "missing.gguf")),
      (e: unknown) => isLlmosError(e) && e.code === "not_found",
    );
  });

  test("outside, relative, traversal and symlinks out are refused alike, existing or not", async () => {
    const p = new ImportPolicy([allowed]);
    const messages = new Set<string>();
    for (const ref of [
      path.join(root, "outside.gguf"), // exists
      path.join(root, "nothing-here.gguf"), // does not
      `${allowed}/../outside.gguf`,
      "models/a.gguf",
      "./a.gguf",
      path.join(allowed, "link.gguf"), // a link inside pointing out
      path.join(allowed, "up", "outside.gguf"), // a folder link pointing out
      allowed, // the folder itself
      `${allowed}-sibling/a.gguf`,
    ]) {
      const error = await p.resolve(ref).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(refused(error), `${ref}: ${String(error)}`);
      messages.add((error as Error).message);
    }
    // One message for all: the answer does not tell whether a path outside exists.
    assert.equal(messages.size, 1, [...messages].join("\n"));
  });
});
