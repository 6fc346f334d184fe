import { Command } from "commander";
import { createContext, type CliContext } from "./context.js";
import { registerBuildCpuBackend } from "./commands/build-cpu-backend.js";
import { registerCp } from "./commands/cp.js";
import { registerCreate } from "./commands/create.js";
import { registerDu } from "./commands/du.js";
import { registerImport } from "./commands/import.js";
import { registerKeys } from "./commands/keys.js";
import { registerCluster } from "./commands/cluster.js";
import { registerList } from "./commands/list.js";
import { registerLoad } from "./commands/load.js";
import { registerPs } from "./commands/ps.js";
import { registerPull } from "./commands/pull.js";
import { registerPush } from "./commands/push.js";
import { registerRm } from "./commands/rm.js";
import { registerRun } from "./commands/run.js";
import { registerServe } from "./commands/serve.js";
import { registerShow } from "./commands/show.js";
import { registerTop } from "./commands/top.js";
import { registerUsage } from "./commands/usage.js";
import { registerVerify } from "./commands/verify.js";
import { registerQuantize } from "./commands/quantize.js";
import { registerImatrix } from "./commands/imatrix.js";
import { registerEval } from "./commands/eval.js";

/** Builds the `llmos` command tree. `env` is passed on only to the daemon's config loader. */
export function buildProgram(env: NodeJS.ProcessEnv): { program: Command; ctx: CliContext } {
  const program = new Command("llmos")
    .description("llmos: an operating system for large language models")
    .version("0.1.0")
    .option("--host <url>", "daemon address (default: LLMOS_HOST or http://127.0.0.1:11435)")
    // Program options only before the command name, so that `serve --host` is serve's bind address.
    .enablePositionalOptions()
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) });
  const ctx = createContext(program, env);
  for (const register of [
    registerServe,
    registerImport,
    registerList,
    registerShow,
    registerRm,
    registerCp,
    registerPull,
    registerPush,
    registerCreate,
    registerQuantize,
    registerImatrix,
    registerEval,
    registerRun,
    registerPs,
    registerTop,
    registerLoad,
    registerKeys,
    registerCluster,
    registerUsage,
    registerVerify,
    registerDu,
    registerBuildCpuBackend,
  ]) {
    register(program, ctx);
  }
  addJsonOption(program);
  return { program, ctx };
}

/** Every client command (all leaves but `serve`) takes `--json`. */
function addJsonOption(command: Command): void {
  for (const sub of command.commands) {
    if (sub.commands.length > 0) addJsonOption(sub);
    else if (sub.name() !== "serve") sub.option("--json", "machine-readable JSON output");
  }
}
