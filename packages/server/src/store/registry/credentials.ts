import fs from "node:fs/promises";

/** What llmos presents to a registry: a user and password (Basic, and to its token endpoint), or a bearer token. */
export interface RegistryCredential {
  username?: string;
  password?: string;
  /** Sent as `Authorization: Bearer` to the registry itself (a personal access token). */
  token?: string;
}

/** Where credentials come from: `LLMOS_OCI_AUTH` entries by host, then Docker's `config.json`. */
export interface CredentialSources {
  /** Parsed `LLMOS_OCI_AUTH`: host[:port] -> credential. */
  byHost?: Readonly<Record<string, RegistryCredential>>;
  /** Docker's `config.json` (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`); read when needed. */
  dockerConfigPath?: string;
}

/** Hosts that name Docker Hub, as registries and as `config.json` keys. */
const DOCKER_HUB = new Set(["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]);

/** `https://index.docker.io/v1/` or `ghcr.io` -> `index.docker.io` / `ghcr.io` (lower-case host[:port]). */
function keyHost(key: string): string {
  const withoutScheme = key.replace(/^[a-z]+:\/\//i, "");
  return withoutScheme.split("/")[0]!.toLowerCase();
}

function sameRegistry(a: string, b: string): boolean {
  return a === b || (DOCKER_HUB.has(a) && DOCKER_HUB.has(b));
}

interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  registrytoken?: string;
}

/**
 * The credential for `host`: an `LLMOS_OCI_AUTH` entry, else a Docker `config.json` `auths` entry (`auth` =
 * base64 of `user:password`, or `username`/`password`, or `registrytoken`). Credential helpers (`credsStore`,
 * `credHelpers`) are programs llmos does not run. A missing or unreadable file means no credential.
 */
export async function findCredential(
  host: string,
  sources: CredentialSources,
): Promise<RegistryCredential | undefined> {
  for (const [key, credential] of Object.entries(sources.byHost ?? {})) {
    if (sameRegistry(keyHost(key), host)) return credential;
  }
  if (!sources.dockerConfigPath) return undefined;
  let config: { auths?: Record<string, DockerAuthEntry> };
  try {
    config = JSON.parse(await fs.readFile(sources.dockerConfigPath, "utf8")) as typeof config;
  } catch {
    return undefined;
  }
  for (const [key, entry] of Object.entries(config?.auths ?? {})) {
    if (!entry || typeof entry !== "object" || !sameRegistry(keyHost(key), host)) continue;
    if (typeof entry.registrytoken === "string" && entry.registrytoken) return { token: entry.registrytoken };
    if (typeof entry.auth === "string" && entry.auth) {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (typeof entry.username === "string" && typeof entry.password === "string") {
      return { username: entry.username, password: entry.password };
    }
  }
  return undefined;
}

/** `Authorization: Basic` value of a user/password credential. */
export function basicAuthorization(credential: RegistryCredential | undefined): string | undefined {
  if (credential?.username === undefined || credential.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString("base64")}`;
}

/** The host requests go to: Docker Hub's API lives on `registry-1.docker.io`, not `docker.io`. */
export function apiHost(registry: string): string {
  return DOCKER_HUB.has(registry) ? "registry-1.docker.io" : registry;
}
