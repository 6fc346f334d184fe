import fs from "node:fs/promises";
import path from "node:path";
import { LlmosError } from "../errors.js";

/**
 * Which server files an HTTP client may name for import (`/api/models/import`, Modelfile FROM/ADAPTER): only
 * files inside the folders listed in `LLMOS_IMPORT_DIRS` (none by default). A key with `models:write` must not
 * turn the daemon into a file reader: anything else is refused before the file system is touched, so the answer
 * says nothing about whether the path exists.
 */
export class ImportPolicy {
  readonly dirs: readonly string[];
  #realDirs: Promise<string[]> | undefined;

  constructor(dirs: readonly string[]) {
    this.dirs = dirs.map((d) => path.resolve(d));
  }

  /**
   * The real path (symbolic links resolved) of `ref` when it lies inside an allowed folder.
   * @throws `path_not_allowed` for anything outside them (checked on the text first, then again after resolving
   *   links, so a link inside a folder cannot point out of it); `not_found` for a missing file inside one.
   */
  async resolve(ref: string, what = "file"): Promise<string> {
    const refused = () =>
      new LlmosError(
        "path_not_allowed",
        this.dirs.length === 0
          ? `${what}: importing files by path over HTTP is off (LLMOS_IMPORT_DIRS is empty); upload the file with ` +
              "POST /api/blobs/<digest> and use FROM @sha256:<digest> (the llmos CLI does this for you)"
          : `${what}: only files inside LLMOS_IMPORT_DIRS may be imported by path; upload others with ` +
              "POST /api/blobs/<digest> (the llmos CLI does this for you)",
        { param: "path" },
      );
    // eslint-disable-next-line no-control-regex
    if (typeof ref !== "string" || !path.isAbsolute(ref) || /[\u0000]/.test(ref)) throw refused();
    const lexical = path.resolve(ref);
    if (!this.dirs.some((d) => inside(d, lexical))) throw refused();
    let real: string;
    try {
      real = await fs.realpath(lexical);
    } catch {
      throw new LlmosError("not_found", `${what}: file not found`, { path: ref });
    }
    const realDirs = await this.realDirs();
    if (!realDirs.some((d) => inside(d, real))) throw refused();
    return real;
  }

  private realDirs(): Promise<string[]> {
    return (this.#realDirs ??= Promise.all(this.dirs.map((d) => fs.realpath(d).catch(() => d))));
  }
}

/** True when `file` is `dir` itself or below it (both absolute and normalised). */
function inside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}
