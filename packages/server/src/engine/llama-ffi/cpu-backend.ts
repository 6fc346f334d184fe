/**
 * A ggml CPU backend compiled on this machine ("built here"), used in place of the variant node-llama-cpp ships.
 *
 * The shipped CPU variants are compiled once for every machine; on this one, the shipped zen4 variant runs F16
 * matrix products at half the speed of the same source compiled here (see docs/performance.md). A built-here
 * backend is one library, `libggml-cpu-<variant>.so`, compiled from the exact llama.cpp source node-llama-cpp
 * ships, with the same options as the shipped variant, and loaded into the shipped libggml-base like the shipped
 * ones. Its folder holds a manifest naming the release and the libggml-base it was built against; a folder that does
 * not match the loaded libraries is ignored, never loaded.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import type { LibraryFiles } from "./library-files.js";

/** The manifest file in a built-here backend folder. */
export const CPU_BACKEND_MANIFEST = "llmos-cpu-backend.json";

/** What the builder records next to the library. */
export interface CpuBackendManifest {
  /** llama.cpp release of node-llama-cpp's binaries the backend was built from, e.g. "v0.4.0". */
  release: string;
  /** The CPU variant (same feature set as the shipped one of that name), e.g. "zen4". */
  variant: string;
  /** File name of the library in the folder, e.g. "libggml-cpu-zen4.so". */
  library: string;
  /** sha256 of the libggml-base it was built against: the loaded one must be the same file. */
  ggmlBaseSha256: string;
  /** The compiler that built it, as `c++ --version` names itself. */
  compiler: string;
  builtAt: string;
}

/** Which CPU backend a runtime uses. */
export interface CpuBackendInfo {
  source: "built-here" | "shipped";
  /** Path of the library the CPU device lives in (null when it cannot be located). */
  library: string | null;
  /** Why a configured built-here folder was not used. */
  fallbackReason?: string;
}

/** The llama.cpp release of a set of prebuilt libraries, from libllama's file name (`libllama.v0.4.0.so`). */
export function releaseOf(files: LibraryFiles): string | null {
  const m = /\.(v\d+\.\d+\.\d+)\.so$/.exec(basename(files.llama));
  return m ? m[1]! : null;
}

/** sha256 of a file, hex. */
export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** The variant name of a CPU backend library file (`libggml-cpu-zen4.so` -> "zen4"; `libggml-cpu.so` -> null). */
export function cpuVariantOf(libraryPath: string): string | null {
  const m = /^libggml-cpu-([\w.]+)\.so$/.exec(basename(libraryPath));
  return m ? m[1]! : null;
}

/** The manifest in `dir`, or null when there is none or it cannot be read. */
export function readCpuBackendManifest(dir: string): CpuBackendManifest | null {
  try {
    return JSON.parse(readFileSync(join(dir, CPU_BACKEND_MANIFEST), "utf8")) as CpuBackendManifest;
  } catch {
    return null;
  }
}

/**
 * Check that `dir` holds a built-here backend usable with the loaded `files`. Returns the manifest, or why not:
 * no manifest, a different release, a different libggml-base, or a missing library.
 */
export function checkCpuBackend(
  dir: string,
  files: LibraryFiles,
): { ok: true; manifest: CpuBackendManifest } | { ok: false; reason: string } {
  const manifestPath = join(dir, CPU_BACKEND_MANIFEST);
  if (!existsSync(manifestPath)) return { ok: false, reason: `no ${CPU_BACKEND_MANIFEST} in ${dir}` };
  let manifest: CpuBackendManifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as CpuBackendManifest;
  } catch (e) {
    return { ok: false, reason: `unreadable ${manifestPath}: ${(e as Error).message}` };
  }
  if (typeof manifest.library !== "string" || !/^libggml-cpu(?:-[\w.]+)?\.so$/.test(manifest.library)) {
    return { ok: false, reason: `${manifestPath} names no CPU backend library` };
  }
  const release = releaseOf(files);
  if (manifest.release !== release) {
    return {
      ok: false,
      reason: `built for llama.cpp ${manifest.release}, the loaded libraries are ${release ?? "of an unknown release"}: rebuild it`,
    };
  }
  if (manifest.ggmlBaseSha256 !== sha256File(files.ggmlBase)) {
    return { ok: false, reason: `built against another libggml-base than ${files.ggmlBase}: rebuild it` };
  }
  const libs = readdirSync(dir).filter((n) => /^libggml-/.test(n));
  if (!libs.includes(manifest.library)) return { ok: false, reason: `${manifest.library} is missing from ${dir}` };
  if (libs.length !== 1)
    return { ok: false, reason: `${dir} must hold only ${manifest.library}, found ${libs.join(", ")}` };
  return { ok: true, manifest };
}
