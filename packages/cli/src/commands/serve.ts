import type { Command } from "commander";
import { loadServer, type CliContext } from "../context.js";

interface ServeOptions {
  host?: string;
  port?: string;
  preload?: string[];
  insecureNoAuth?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  cluster?: string;
  nodeName?: string;
  advertise?: string;
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
    .option("--cluster <postgres-url>", "join the cluster coordinated through this PostgreSQL database")
    .option("--node-name <name>", "this node's name in the cluster (default: the host name)")
    .option("--advertise <url>", "the URL other nodes reach this one at (default: the listen URL)")
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
          cluster: opts.cluster,
          nodeName: opts.nodeName,
          advertise: opts.advertise,
        },
      });
      // Signals are caught from before the daemon starts: one that arrives while it starts (or right after it
      // says it listens) still drains and stops it.
      let stopRequested: () => void = () => undefined;
      const signalled = new Promise<void>((resolve) => (stopRequested = resolve));
      let signals = 0;
      const onSignal = () => {
        // The first signal drains; a second one stops at once (runners exit with their IPC channel).
        if (++signals > 1) process.exit(130);
        stopRequested();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        const daemon = await server.startDaemon(config);
        ctx.info(`llmos listening on ${daemon.url}`);
        await signalled;
        ctx.info("shutting down: finishing requests in flight (Ctrl+C again to stop at once)");
        await daemon.close().catch((error: unknown) => {
          ctx.info(`shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
        });
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}
