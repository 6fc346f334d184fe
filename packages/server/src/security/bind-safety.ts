import type { LlmosConfig } from "../config/config.js";
import { LlmosError } from "../errors.js";
import type { SecurityLogger } from "./logger.js";
import { isLoopbackHost } from "./loopback.js";

/**
 * Refuses to listen on a non-loopback address while no API key exists: that would expose every model
 * and admin endpoint to the network. `insecureNoAuth` overrides this, with a loud warning.
 * Throws LlmosError `forbidden`.
 */
export function assertSafeBind(
  config: Pick<LlmosConfig, "host" | "insecureNoAuth">,
  authEnabled: boolean,
  logger?: Pick<SecurityLogger, "warn">,
): void {
  if (isLoopbackHost(config.host) || authEnabled) return;
  if (config.insecureNoAuth) {
    logger?.warn(
      { host: config.host, insecureNoAuth: true },
      `!!! INSECURE: listening on ${config.host} WITHOUT AUTHENTICATION. Anyone who can reach this address can run, ` +
        "pull, delete and load models. Create an API key (`llmos keys create`) and drop --insecure-no-auth. !!!",
    );
    return;
  }
  throw new LlmosError(
    "forbidden",
    `refusing to listen on non-loopback host ${config.host} without authentication: no API key exists. ` +
      "Start llmos on 127.0.0.1, create a key with `llmos keys create --name <name> --scope admin`, then restart on " +
      `${config.host}; or pass --insecure-no-auth (LLMOS_INSECURE_NO_AUTH=1) to run open deliberately.`,
    { host: config.host },
  );
}
