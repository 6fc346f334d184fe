import type { Command } from "commander";
import { loadServer, type CliContext } from "../context.js";

interface ServeOptions {
  host?: string;
  port?: string;
  preload?: string[];
  insecureNoAuth?: boolean;
  tlsCert?: string;
  tlsKey?: string;
}

/** `llmos serve`: runs the daemon in the foreground until SIGINT/SIGTERM. */
export function registerServe(program: Command, ctx: CliContext): void {
  program
    .command("serve")
    .description("start the llmos daemon")
    .option("--host <host>", "address to listen on (default 127.0.0.1)")
    .option("--port <port>", "port to listen on (default 11435)")
    .option("--preload <name...>", "models to load and pin at start-up")
    .option("--insecure-no-auth", "allow a non-loopback bind without API keys")
    .option("--tls-cert <file>", "TLS certificate (PEM)")
    .option("--tls-key <file>", "TLS private key (PEM)")
    .action(async (opts: ServeOptions) => {
      const server = await loadServer();
      const port = opts.port === undefined ? undefined : Number(opts.port);
      if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
        throw new Error(`invalid --port "${opts.port}"`);
      }
      // `--host` here is the bind address; the program-level `--host` (the daemon URL for clients) is separate.
      const config = server.loadConfig({
        env: ctx.env,
        flags: {
          host: opts.host,
          port,
          preload: opts.preload,
          insecureNoAuth: opts.insecureNoAuth,
          tlsCert: opts.tlsCert,
          tlsKey: opts.tlsKey,
        },
      });
      const daemon = await server.startDaemon(config);
      ctx.info(`llmos listening on ${daemon.url}`);
      await new Promise<void>((resolve) => {
        let closing = false;
        const stop = () => {
          if (closing) return;
          closing = true;
          ctx.info("shutting down");
          daemon.close().then(resolve, (error: unknown) => {
            ctx.info(`shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
            resolve();
          });
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });
}
