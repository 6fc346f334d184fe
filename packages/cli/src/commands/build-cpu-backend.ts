import cliProgress from "cli-progress";
import type { Command } from "commander";
import { loadServer, type CliContext } from "../context.js";

interface BuildOptions {
  dir?: string;
  variant?: string;
  jobs?: string;
  keepSource?: string;
}

/**
 * `llmos build-cpu-backend`: compiles llama.cpp's CPU backend on this machine (from the source node-llama-cpp
 * ships) into `<LLMOS_HOME>/engine/ggml-cpu`, where runners started afterwards pick it up (`LLMOS_CPU_BACKEND=auto`).
 * Runs without the daemon.
 */
export function registerBuildCpuBackend(program: Command, ctx: CliContext): void {
  program
    .command("build-cpu-backend")
    .description("compile llama.cpp's CPU backend for this machine (needs git, cmake, g++; about a minute)")
    .option("--dir <folder>", "install folder (default: <LLMOS_HOME>/engine/ggml-cpu, or LLMOS_CPU_BACKEND's folder)")
    .option("--variant <name>", "CPU variant to build (default: the one ggml picks here, e.g. zen4)")
    .option("--jobs <n>", "parallel compile jobs (default: all cores)")
    .option("--keep-source <folder>", "keep the source and build tree in this folder (faster rebuilds)")
    .action(async (opts: BuildOptions, cmd: Command) => {
      const server = await loadServer();
      const config = server.loadConfig({ env: ctx.env });
      const dir =
        opts.dir ??
        server.cpuBackendDir({ ...config, cpuBackend: config.cpuBackend === "shipped" ? "auto" : config.cpuBackend });
      if (!dir) throw new Error("no install folder: give --dir");
      const jobs = opts.jobs === undefined ? undefined : Number(opts.jobs);
      if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1)) throw new Error(`invalid --jobs "${opts.jobs}"`);
      const json = ctx.json(cmd);
      const tty = Boolean(ctx.stderr.isTTY) && !json;
      let bar: cliProgress.SingleBar | undefined;
      let lastPhase = "";
      try {
        const result = await server.buildCpuBackend({
          outDir: dir,
          ...(opts.variant ? { variant: opts.variant } : {}),
          ...(jobs ? { jobs } : {}),
          ...(opts.keepSource ? { workDir: opts.keepSource } : {}),
          onProgress: (p) => {
            if (json) return;
            if (p.phase === "compile" && tty) {
              bar ??= new cliProgress.SingleBar(
                { stream: ctx.stderr, hideCursor: true, format: "compiling {bar} {percent}% {file}" },
                cliProgress.Presets.shades_classic,
              );
              if (!bar.isActive) bar.start(100, 0, { file: "" });
              bar.update(p.percent ?? 0, { file: p.message.replace(/^.*\//, "").slice(0, 40) });
              return;
            }
            bar?.stop();
            if (p.phase !== lastPhase || p.phase !== "compile") ctx.info(p.message);
            lastPhase = p.phase;
          },
        });
        bar?.stop();
        if (json) return ctx.printJson(result);
        ctx.print(
          `built ${result.manifest.library} (${result.manifest.variant}, llama.cpp ${result.manifest.release}, ${result.manifest.compiler}) in ${result.seconds.toFixed(0)} s`,
        );
        ctx.print(`installed in ${result.dir}; models loaded from now on use it`);
      } finally {
        bar?.stop();
      }
    });
}
