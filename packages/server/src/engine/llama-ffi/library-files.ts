/**
 * Finds the prebuilt libllama/libggml that node-llama-cpp ships in its platform packages
 * (`@node-llama-cpp/<platform>-<arch>[-cuda|-vulkan]/bins/<folder>/`), by resolving the package, never a fixed path.
 */
import { createRequire } from "node:module";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";

/** Absolute paths of the libraries one engine loads. */
export interface LibraryFiles {
  /** Folder holding libllama, libggml and the backend variants (`ggml_backend_load_all_from_path` argument). */
  dir: string;
  llama: string;
  ggml: string;
  ggmlBase: string;
}

/** Pick the libraries of one bins folder; throws when a required file is absent. */
export function libraryFilesIn(dir: string): LibraryFiles {
  const names = readdirSync(dir);
  // libllama.v0.4.0.so / libllama.cuda.v0.4.0.so; not libllama-common.so (node-llama-cpp's helper library).
  const pick = (re: RegExp, what: string): string => {
    const hit = names.find((n) => re.test(n));
    if (!hit) throw new Error(`llama-ffi: no ${what} in ${dir}`);
    return join(dir, hit);
  };
  return {
    dir,
    llama: pick(/^libllama\.(?:[a-z]+\.)?v[\d.]+\.so$|^libllama\.so$/, "libllama"),
    ggml: pick(/^libggml\.(?:[a-z]+\.)?v[\d.]+\.so$|^libggml\.so$/, "libggml"),
    ggmlBase: pick(/^libggml-base\.so$/, "libggml-base"),
  };
}

/**
 * Locate the bins folder of node-llama-cpp's prebuilt binaries.
 * @param gpu when true, prefer the CUDA then Vulkan package (if installed) over the CPU-only one. Default false.
 */
export function findLibraryFiles(opts: { gpu?: boolean } = {}): LibraryFiles {
  // Resolve from node-llama-cpp's own location: the platform packages are its optional dependencies.
  const fromNlc = createRequire(join(nodeLlamaCppRoot(), "package.json"));
  const platform = `${process.platform}-${process.arch}`;
  const packages = opts.gpu ? [`${platform}-cuda`, `${platform}-vulkan`, platform] : [platform];
  const tried: string[] = [];
  for (const pkg of packages) {
    let entry: string;
    try {
      entry = fromNlc.resolve(`@node-llama-cpp/${pkg}`);
    } catch {
      tried.push(`@node-llama-cpp/${pkg} (not installed)`);
      continue;
    }
    const bins = join(dirname(entry), "..", "bins");
    if (!existsSync(bins)) continue;
    for (const sub of readdirSync(bins)) {
      const dir = join(bins, sub);
      try {
        return libraryFilesIn(dir);
      } catch {
        tried.push(dir);
      }
    }
  }
  throw new Error(`llama-ffi: no prebuilt libllama found (tried ${tried.join(", ")})`);
}

/** node-llama-cpp's package folder (its `exports` hide package.json, so walk up from its entry point). */
export function nodeLlamaCppRoot(): string {
  const require = createRequire(import.meta.url);
  let dir = dirname(require.resolve("node-llama-cpp"));
  while (!existsSync(join(dir, "package.json")) || !existsSync(join(dir, "llama"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("llama-ffi: node-llama-cpp's package folder not found");
    dir = up;
  }
  return dir;
}
