/**
 * Builds a ggml CPU backend on this machine (see cpu-backend.ts): the variant ggml picks from the shipped ones for
 * this CPU, compiled from the llama.cpp source node-llama-cpp ships (its `gitRelease.bundle`) with the options the
 * shipped variants are built with, then checked in a child process and installed atomically into `outDir`.
 * Needs git, cmake and a C/C++ compiler; about a minute on 2 cores.
 */
import { execFile, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  checkCpuBackend,
  CPU_BACKEND_MANIFEST,
  cpuVariantOf,
  releaseOf,
  sha256File,
  type CpuBackendInfo,
  type CpuBackendManifest,
} from "./cpu-backend.js";
import { findLibraryFiles, nodeLlamaCppRoot } from "./library-files.js";

const run = promisify(execFile);

/** A step of the build, for progress display. */
export type CpuBackendBuildPhase = "probe" | "source" | "configure" | "compile" | "verify" | "install";

export interface CpuBackendBuildProgress {
  phase: CpuBackendBuildPhase;
  /** Percent of the compile step (from the build tool's output), when known. */
  percent?: number;
  message: string;
}

export interface BuildCpuBackendOptions {
  /** Folder to install into (replaced as a whole once the new build is checked). */
  outDir: string;
  /** Variant to build (e.g. "zen4", "haswell"). Default: the one ggml loads from the shipped variants here. */
  variant?: string;
  /** Parallel compile jobs. Default: available cores. */
  jobs?: number;
  /** Keep the source and build tree here (reused by the next build) instead of a temporary folder. */
  workDir?: string;
  onProgress?: (progress: CpuBackendBuildProgress) => void;
  /** Run the build tools at this niceness (e.g. 19 for a background build that yields to runners). Default: none. */
  nice?: number;
  /** Aborting stops the build tools and fails the build (nothing is installed). */
  signal?: AbortSignal;
}

export interface BuildCpuBackendResult {
  dir: string;
  manifest: CpuBackendManifest;
  /** The backend the check in a fresh process registered from `dir`. */
  check: CpuBackendInfo;
  seconds: number;
}

/** An error of the build, with the build tool's last lines of output. */
export class CpuBackendBuildError extends Error {
  constructor(
    message: string,
    readonly output = "",
  ) {
    super(output ? `${message}\n${output}` : message);
    this.name = "CpuBackendBuildError";
  }
}

const probeEntry = (() => {
  const ext = fileURLToPath(import.meta.url).endsWith(".ts") ? ".ts" : ".js";
  return fileURLToPath(new URL(`./cpu-backend-probe${ext}`, import.meta.url));
})();

/** Which CPU backend a fresh process registers with `dir` as the built-here folder (null: the shipped one). */
export async function probeCpuBackend(
  dir: string | null,
  opts: { nice?: number; signal?: AbortSignal } = {},
): Promise<CpuBackendInfo & { devices: string[] }> {
  try {
    const [cmd, args] = niced(opts.nice, process.execPath, [...process.execArgv, probeEntry, dir ?? "-"]);
    const { stdout } = await run(cmd, args, { timeout: 60_000, ...(opts.signal ? { signal: opts.signal } : {}) });
    return JSON.parse(stdout.trim().split("\n").pop() ?? "") as CpuBackendInfo & { devices: string[] };
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new CpuBackendBuildError(
      `loading the CPU backend${dir ? ` from ${dir}` : ""} failed in a test process`,
      tail(err.stderr ?? err.message),
    );
  }
}

/** Build, check and install the CPU backend. */
export async function buildCpuBackend(opts: BuildCpuBackendOptions): Promise<BuildCpuBackendResult> {
  const started = performance.now();
  const progress = (phase: CpuBackendBuildPhase, message: string, percent?: number) =>
    opts.onProgress?.({ phase, message, ...(percent !== undefined ? { percent } : {}) });
  if (process.platform !== "linux")
    throw new CpuBackendBuildError("building the CPU backend is supported on Linux only");
  const files = findLibraryFiles({ gpu: false });
  const release = releaseOf(files);
  if (!release) throw new CpuBackendBuildError(`cannot tell the llama.cpp release of ${files.llama}`);
  const compiler = await toolVersion("c++");
  await toolVersion("cmake");
  await toolVersion("git");
  const tools = { nice: opts.nice, signal: opts.signal };

  progress("probe", "finding the CPU variant ggml uses here");
  let variant = opts.variant;
  if (!variant) {
    const shipped = await probeCpuBackend(null, tools);
    variant = shipped.library ? (cpuVariantOf(shipped.library) ?? undefined) : undefined;
    if (!variant)
      throw new CpuBackendBuildError(
        `the shipped CPU backend (${shipped.library ?? "unknown"}) is not a named variant`,
      );
  }
  if (!/^[\w.]+$/.test(variant)) throw new CpuBackendBuildError(`invalid variant "${variant}"`);

  const work = opts.workDir ?? mkdtempSync(join(os.tmpdir(), "llmos-cpu-backend-"));
  const src = join(work, `llama.cpp-${release}`);
  const build = join(work, `build-${release}`);
  try {
    if (!existsSync(join(src, "ggml", "CMakeLists.txt"))) {
      progress("source", `unpacking llama.cpp ${release} from node-llama-cpp`);
      rmSync(src, { recursive: true, force: true });
      mkdirSync(work, { recursive: true });
      await runTool("git", ["clone", "--quiet", sourceBundle(), src], tools);
    }
    progress("configure", "configuring (cmake)");
    await runTool("cmake", ["-S", src, "-B", build, ...CMAKE_OPTIONS], tools);
    const target = `ggml-cpu-${variant}`;
    progress("compile", `compiling ${target}`, 0);
    const jobs = opts.jobs ?? os.availableParallelism();
    await runTool("cmake", ["--build", build, "--config", "Release", "--target", target, "-j", String(jobs)], {
      ...tools,
      onLine: (line) => {
        const m = /^\[\s*(\d+)%\]/.exec(line);
        if (m) progress("compile", line.replace(/^\[\s*\d+%\]\s*/, ""), Number(m[1]));
      },
    });
    const library = `libggml-cpu-${variant}.so`;
    const built = join(build, "bin", library);
    if (!existsSync(built)) throw new CpuBackendBuildError(`the build made no ${built}`);

    progress("verify", "loading it in a test process");
    const staging = `${opts.outDir}.new-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    copyFileSync(built, join(staging, library));
    const manifest: CpuBackendManifest = {
      release,
      variant,
      library,
      ggmlBaseSha256: sha256File(files.ggmlBase),
      compiler,
      builtAt: new Date().toISOString(),
    };
    writeFileSync(join(staging, CPU_BACKEND_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    const check = await probeCpuBackend(staging, tools).catch((e: unknown) => {
      rmSync(staging, { recursive: true, force: true });
      throw e;
    });
    if (check.source !== "built-here") {
      rmSync(staging, { recursive: true, force: true });
      throw new CpuBackendBuildError(`the built backend was not used: ${check.fallbackReason ?? "unknown reason"}`);
    }

    progress("install", `installing into ${opts.outDir}`);
    mkdirSync(dirname(opts.outDir), { recursive: true });
    const old = `${opts.outDir}.old-${process.pid}`;
    if (existsSync(opts.outDir)) renameSync(opts.outDir, old);
    try {
      renameSync(staging, opts.outDir);
    } catch (e) {
      // Put the previous build back rather than leave none.
      if (existsSync(old)) renameSync(old, opts.outDir);
      rmSync(staging, { recursive: true, force: true });
      throw e;
    }
    rmSync(old, { recursive: true, force: true });
    const installed = { ...check, library: join(opts.outDir, basename(check.library ?? library)) };
    return { dir: opts.outDir, manifest, check: installed, seconds: (performance.now() - started) / 1000 };
  } finally {
    if (!opts.workDir) rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The options node-llama-cpp builds its x64/arm64 CPU variants with (GGML_CPU_ALL_VARIANTS as dynamically loaded
 * backends, no OpenMP so the ggml threadpool is used), plus an unversioned soname and no rpath so the library
 * binds to the shipped libggml-base.so already in the process.
 */
const CMAKE_OPTIONS = [
  "-DCMAKE_BUILD_TYPE=Release",
  "-DBUILD_SHARED_LIBS=ON",
  "-DGGML_BACKEND_DL=ON",
  "-DGGML_CPU_ALL_VARIANTS=ON",
  "-DGGML_NATIVE=OFF",
  "-DGGML_OPENMP=OFF",
  "-DGGML_CCACHE=OFF",
  "-DCMAKE_PLATFORM_NO_VERSIONED_SONAME=ON",
  "-DCMAKE_SKIP_RPATH=ON",
  "-DLLAMA_CURL=OFF",
  "-DLLAMA_BUILD_COMMON=OFF",
  "-DLLAMA_BUILD_TESTS=OFF",
  "-DLLAMA_BUILD_TOOLS=OFF",
  "-DLLAMA_BUILD_EXAMPLES=OFF",
  "-DLLAMA_BUILD_SERVER=OFF",
];

/** node-llama-cpp's copy of the llama.cpp source of its binaries. */
function sourceBundle(): string {
  const bundle = join(nodeLlamaCppRoot(), "llama", "gitRelease.bundle");
  if (!existsSync(bundle)) throw new CpuBackendBuildError(`node-llama-cpp's llama.cpp source is missing (${bundle})`);
  return bundle;
}

/** The first build tool (git, cmake, c++) that is not installed, or null when all are. */
export async function missingBuildTool(): Promise<string | null> {
  for (const tool of ["git", "cmake", "c++"]) {
    try {
      await run(tool, ["--version"]);
    } catch {
      return tool;
    }
  }
  return null;
}

/**
 * Whether `dir` holds a built-here backend that matches the installed libraries, and what a build made now would be
 * for (`key`: the release and the libggml-base it binds to; a recorded failure with the same key is not retried).
 */
export function inspectBuiltCpuBackend(dir: string): { usable: boolean; reason: string | null; key: string } {
  const files = findLibraryFiles({ gpu: false });
  const key = `${releaseOf(files) ?? "unknown"}+${sha256File(files.ggmlBase).slice(0, 16)}`;
  const check = checkCpuBackend(dir, files);
  return check.ok ? { usable: true, reason: null, key } : { usable: false, reason: check.reason, key };
}

/** `cmd args` run through nice(1) at `nice`, when asked and nice is there (coreutils); else as is. */
function niced(nice: number | undefined, cmd: string, args: string[]): [string, string[]] {
  if (nice === undefined || !existsSync("/usr/bin/nice")) return [cmd, args];
  return ["/usr/bin/nice", ["-n", String(nice), cmd, ...args]];
}

async function toolVersion(tool: string): Promise<string> {
  try {
    const { stdout } = await run(tool, ["--version"]);
    return stdout.split("\n")[0]!.trim();
  } catch {
    throw new CpuBackendBuildError(
      `${tool} is required to build the CPU backend (Debian/Ubuntu: apt-get install cmake g++ git)`,
    );
  }
}

/** Run a build tool, passing each output line to `onLine`; fail with its last lines. */
function runTool(
  tool: string,
  toolArgs: string[],
  opts: { onLine?: (line: string) => void; nice?: number | undefined; signal?: AbortSignal | undefined } = {},
): Promise<void> {
  const onLine = opts.onLine;
  const [cmd, args] = niced(opts.nice, tool, toolArgs);
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new CpuBackendBuildError(`the build was stopped before ${tool} ran`));
    // A stoppable build runs each tool in its own process group, so stopping it stops the compilers cmake started
    // too; otherwise the tools stay in the caller's group (Ctrl+C in a terminal reaches them).
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], detached: opts.signal !== undefined });
    const stop = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    };
    opts.signal?.addEventListener("abort", stop, { once: true });
    let output = "";
    let partial = "";
    const take = (data: Buffer) => {
      const text = data.toString();
      output = (output + text).slice(-20_000);
      partial += text;
      let nl: number;
      while ((nl = partial.indexOf("\n")) >= 0) {
        onLine?.(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", (e) => reject(new CpuBackendBuildError(`${tool} failed to start: ${e.message}`)));
    child.on("close", (code) => {
      opts.signal?.removeEventListener("abort", stop);
      if (code === 0) resolve();
      else if (opts.signal?.aborted) reject(new CpuBackendBuildError(`the build was stopped during ${tool}`));
      else reject(new CpuBackendBuildError(`${tool} ${toolArgs[0]} exited with ${code}`, tail(output)));
    });
  });
}

function tail(text: string, lines = 30): string {
  return text.trim().split("\n").slice(-lines).join("\n");
}
