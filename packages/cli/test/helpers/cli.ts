import { spawn } from "node:child_process";
import { REPO_ROOT } from "@llmos/test-support";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI from source as a child process, asynchronously (the daemon under test runs in this process, so a
 * blocking spawn would deadlock it).
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--conditions=llmos-source", "--import", "tsx", "packages/cli/src/main.ts", ...args],
      { cwd: REPO_ROOT, env, stdio: ["pipe", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

/** The environment for a CLI child: the daemon's URL and home, no inherited llmos settings. */
export function cliEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  // A daemon the CLI starts (`llmos serve`) must not compile the CPU backend in the background during tests.
  const env: NodeJS.ProcessEnv = { ...process.env, LLMOS_CPU_BACKEND_BUILD: "off", ...extra };
  for (const k of ["LLMOS_API_KEY", ...(extra["LLMOS_HOST"] ? [] : ["LLMOS_HOST"])]) if (!(k in extra)) delete env[k];
  return env;
}
