/**
 * The process-wide libllama runtime: libraries loaded, log callback set, backends registered, backend initialised.
 * This is state of the process (a shared library can be loaded once), so it is created once and shared by every
 * LlamaFfiEngine; engines only choose where logs go.
 */
import koffi from "koffi";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { GGML_BACKEND_DEVICE_TYPE_CPU, GgmlLogCallback, loadBindings, type Bindings } from "./bindings.js";
import { checkCpuBackend, type CpuBackendInfo } from "./cpu-backend.js";
import { findLibraryFiles, libraryFilesIn, type LibraryFiles } from "./library-files.js";

/** Log levels an engine logger receives. */
export type EngineLogLevel = "error" | "warn" | "info" | "debug";
/** Where llama.cpp logs go. */
export type EngineLogger = (level: EngineLogLevel, msg: string) => void;

/** The loaded native runtime. */
export interface NativeRuntime {
  readonly bindings: Bindings;
  readonly files: LibraryFiles;
  /** Names of the registered backend devices (e.g. "CPU"). */
  readonly devices: string[];
  /** Which CPU backend is in use: one built here (see cpu-backend.ts) or the variant node-llama-cpp ships. */
  readonly cpuBackend: CpuBackendInfo;
  /** Route llama.cpp logs to `logger` (null = silent). Process-wide: the last call wins. */
  setLogger(logger: EngineLogger | null): void;
  /** The logger currently receiving logs. */
  readonly logger: EngineLogger | null;
}

let runtime: NativeRuntime | undefined;

// ggml_log_level: NONE=0 DEBUG=1 INFO=2 WARN=3 ERROR=4 CONT=5
const LEVELS: Record<number, EngineLogLevel> = { 1: "debug", 2: "info", 3: "warn", 4: "error" };

/**
 * Load (once per process) the libraries in `libraryDir`, or the ones node-llama-cpp ships.
 * Throws if a different folder was already loaded in this process.
 */
export function getNativeRuntime(opts: {
  libraryDir?: string;
  gpu?: boolean;
  logger?: EngineLogger | null;
  /** Folder of a CPU backend built here; used when it matches the loaded libraries, else the shipped one is. */
  cpuBackendDir?: string | null;
}): NativeRuntime {
  const files = opts.libraryDir ? libraryFilesIn(opts.libraryDir) : findLibraryFiles({ gpu: opts.gpu ?? false });
  if (runtime) {
    if (runtime.files.dir !== files.dir && opts.libraryDir) {
      throw new Error(`llama-ffi: libraries already loaded from ${runtime.files.dir}, cannot also load ${files.dir}`);
    }
    if (opts.logger !== undefined) runtime.setLogger(opts.logger);
    return runtime;
  }
  const bindings = loadBindings(files);
  const { llama, ggml } = bindings;

  // Logging. With no logger we install a native function that ignores its arguments: no JS is re-entered, so a
  // log raised on a ggml worker thread during a synchronous decode cannot block on the (busy) main thread.
  // With a logger we install a trivial JS callback; koffi queues logs from other threads to the main thread.
  let logger: EngineLogger | null = null;
  let jsCallback: bigint | null = null;
  let pending = "";
  let pendingLevel: EngineLogLevel = "info";
  const onLog = (level: number, text: string | null): void => {
    if (!logger || text == null) return;
    if (level !== 5) pendingLevel = LEVELS[level] ?? "info";
    pending += text;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.length > 0) logger(pendingLevel, line);
    }
  };
  // Installed on every call: another user of the same libllama in this process (node-llama-cpp) may have
  // replaced the process-wide callback.
  const setLogger = (next: EngineLogger | null): void => {
    logger = next;
    if (next) {
      jsCallback ??= koffi.register(onLog, koffi.pointer(GgmlLogCallback));
      llama.llama_log_set(jsCallback, null);
    } else {
      llama.llama_log_set(bindings.nativeNoop, null);
      if (jsCallback !== null) koffi.unregister(jsCallback);
      jsCallback = null;
    }
  };
  // Before anything that can log (backend loading logs from the registry).
  setLogger(opts.logger ?? null);

  // ggml's own loader is silent about backends whose libraries are missing (a CUDA build without the CUDA
  // runtime); loading them one by one is made as quiet, and says it at debug level.
  const muted = <T>(fn: () => T): T => {
    const current = logger;
    llama.llama_log_set(bindings.nativeNoop, null);
    try {
      return fn();
    } finally {
      setLogger(current);
    }
  };
  const cpuBackend = registerBackends(bindings, files, opts.cpuBackendDir ?? null, muted, (msg) =>
    logger?.("debug", msg),
  );
  llama.llama_backend_init();
  const devices: string[] = [];
  const n = Number(ggml.ggml_backend_dev_count());
  for (let i = 0; i < n; i++) devices.push(ggml.ggml_backend_dev_name(ggml.ggml_backend_dev_get(i)));
  runtime = {
    bindings,
    files,
    devices,
    cpuBackend,
    setLogger,
    get logger() {
      return logger;
    },
  };
  return runtime;
}

/**
 * Register the ggml backends: the CPU backend built here when `cpuBackendDir` holds one that matches `files` (and
 * then every other backend of `files.dir`, one by one, skipping its CPU variants), else everything `files.dir` has,
 * the way ggml chooses (the best CPU variant for this CPU, and the GPU backends).
 */
function registerBackends(
  bindings: Bindings,
  files: LibraryFiles,
  cpuBackendDir: string | null,
  muted: <T>(fn: () => T) => T,
  debug: (msg: string) => void,
): CpuBackendInfo {
  const { ggml } = bindings;
  let fallbackReason: string | undefined;
  if (cpuBackendDir) {
    const check = checkCpuBackend(cpuBackendDir, files);
    if (check.ok) {
      // Only the built-here library is in that folder; ggml scores it and loads it if this CPU has its features.
      ggml.ggml_backend_load_all_from_path(cpuBackendDir);
      if (ggml.ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)) {
        for (const name of readdirSync(files.dir)) {
          if (!/^libggml-(?!base\.|cpu[-.])[\w-]+\.so$/.test(name)) continue;
          if (!muted(() => ggml.ggml_backend_load(join(files.dir, name))))
            debug(`backend ${name} not loaded (its own libraries are missing, or no device)`);
        }
        return { source: "built-here", library: bindings.cpuLibraryPath() };
      }
      fallbackReason = `${check.manifest.library} could not be loaded or does not run on this CPU (it needs the ${check.manifest.variant} features)`;
    } else {
      fallbackReason = check.reason;
    }
  }
  ggml.ggml_backend_load_all_from_path(files.dir);
  return { source: "shipped", library: bindings.cpuLibraryPath(), ...(fallbackReason ? { fallbackReason } : {}) };
}
