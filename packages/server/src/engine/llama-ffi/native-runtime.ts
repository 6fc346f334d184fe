/**
 * The process-wide libllama runtime: libraries loaded, log callback set, backends registered, backend initialised.
 * This is state of the process (a shared library can be loaded once), so it is created once and shared by every
 * LlamaFfiEngine; engines only choose where logs go.
 */
import koffi from "koffi";
import { GgmlLogCallback, loadBindings, type Bindings } from "./bindings.js";
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
export function getNativeRuntime(opts: { libraryDir?: string; gpu?: boolean; logger?: EngineLogger | null }): NativeRuntime {
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

  ggml.ggml_backend_load_all_from_path(files.dir);
  llama.llama_backend_init();
  const devices: string[] = [];
  const n = Number(ggml.ggml_backend_dev_count());
  for (let i = 0; i < n; i++) devices.push(ggml.ggml_backend_dev_name(ggml.ggml_backend_dev_get(i)));
  runtime = {
    bindings,
    files,
    devices,
    setLogger,
    get logger() {
      return logger;
    },
  };
  return runtime;
}
