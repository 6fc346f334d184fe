import { LlmosError } from "../../errors.js";
import { basicAuthorization, type RegistryCredential } from "./credentials.js";
import { readLimited } from "./read-limited.js";
import type { UrlPolicy } from "../pull/url-policy.js";

/** A `WWW-Authenticate` challenge of a registry. */
export interface AuthChallenge {
  scheme: "bearer" | "basic";
  realm?: string;
  service?: string;
  scope?: string;
}

/** Parses `Bearer realm="...",service="...",scope="..."` (or `Basic realm="..."`); undefined for other schemes. */
export function parseChallenge(header: string | null): AuthChallenge | undefined {
  const m = /^\s*(bearer|basic)\b(.*)$/i.exec(header ?? "");
  if (!m) return undefined;
  const out: AuthChallenge = { scheme: m[1]!.toLowerCase() as AuthChallenge["scheme"] };
  for (const p of m[2]!.matchAll(/(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]*))/g)) {
    const key = p[1]!.toLowerCase();
    const value = p[2] ?? p[3] ?? "";
    if (key === "realm" || key === "service" || key === "scope") out[key] = value;
  }
  return out;
}

/** How {@link RegistryAuth} reaches token endpoints. */
export interface RegistryAuthOptions {
  /** `host[:port]` of the registry, for messages. */
  host: string;
  /** The registry's base URL: a token endpoint is checked as a hop from it. */
  base: string;
  credential: RegistryCredential | undefined;
  fetch: typeof fetch;
  policy: UrlPolicy;
  signal?: AbortSignal;
}

/** Longest token response read. */
const MAX_TOKEN_RESPONSE = 1 << 20;

/**
 * The authorization a registry client sends, per access scope (`repository:library/x:pull`): a credential's own
 * token, Basic after a Basic challenge, or a bearer token from the token endpoint a Bearer challenge names (the
 * distribution spec's token flow; the credential's user and password go there as Basic, anonymous otherwise).
 */
export class RegistryAuth {
  readonly #tokens = new Map<string, string>();
  #basic = false;

  constructor(readonly options: RegistryAuthOptions) {}

  /** The `Authorization` value for requests of `scope`, if one is known yet. */
  header(scope: string): string | undefined {
    if (this.options.credential?.token) return `Bearer ${this.options.credential.token}`;
    if (this.#basic) return basicAuthorization(this.options.credential);
    return this.#tokens.get(scope);
  }

  /**
   * Answers a 401: fetches a token for the challenge (or switches to Basic). True when there is something new to
   * send; false when the registry refused what llmos has (the caller reports it).
   * @throws `forbidden` when the token endpoint refuses the credential, `upstream_error` when it fails otherwise.
   */
  async answer(challengeHeader: string | null, scope: string): Promise<boolean> {
    const challenge = parseChallenge(challengeHeader);
    if (!challenge || this.options.credential?.token) return false;
    if (challenge.scheme === "basic") {
      if (this.#basic || basicAuthorization(this.options.credential) === undefined) return false;
      this.#basic = true;
      return true;
    }
    if (!challenge.realm) return false;
    const before = this.#tokens.get(scope);
    // Ask for what this request needs and what the registry named (a HEAD before a push names only pull).
    const scopes = [...new Set([scope, ...(challenge.scope ? [challenge.scope] : [])])].join(" ");
    const token = await this.#fetchToken(challenge, scopes);
    this.#tokens.set(scope, `Bearer ${token}`);
    return `Bearer ${token}` !== before;
  }

  async #fetchToken(challenge: AuthChallenge, scope: string): Promise<string> {
    let url: URL;
    try {
      url = new URL(challenge.realm!);
    } catch {
      throw new LlmosError("upstream_error", `registry ${this.options.host} named an invalid token endpoint`);
    }
    await this.options.policy(url, "token", new URL(this.options.base));
    if (challenge.service) url.searchParams.set("service", challenge.service);
    for (const s of scope.split(" ").filter(Boolean)) url.searchParams.append("scope", s);
    const basic = basicAuthorization(this.options.credential);
    let response: Response;
    try {
      response = await this.options.fetch(url, {
        headers: { accept: "application/json", ...(basic ? { authorization: basic } : {}) },
        redirect: "error",
        signal: this.options.signal,
      });
    } catch (error) {
      if (this.options.signal?.aborted) throw error;
      throw new LlmosError("upstream_error", `cannot reach the token endpoint of ${this.options.host} (${url.host})`);
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new LlmosError(
        "forbidden",
        `registry ${this.options.host} refused ${basic ? "the credentials llmos has for it" : "anonymous access"} ` +
          `(token endpoint HTTP ${response.status}); ` +
          (basic ? "check LLMOS_OCI_AUTH or docker login" : "set credentials in LLMOS_OCI_AUTH or with docker login"),
        { upstreamStatus: response.status },
      );
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new LlmosError(
        "upstream_error",
        `token endpoint of ${this.options.host} answered HTTP ${response.status}`,
        {
          upstreamStatus: response.status,
        },
      );
    }
    let body: { token?: unknown; access_token?: unknown };
    try {
      body = JSON.parse((await readLimited(response, MAX_TOKEN_RESPONSE)).toString("utf8")) as typeof body;
    } catch {
      throw new LlmosError("upstream_error", `token endpoint of ${this.options.host} answered something not JSON`);
    }
    const token = typeof body?.token === "string" ? body.token : body?.access_token;
    if (typeof token !== "string" || token.length === 0 || /[\r\n]/.test(token)) {
      throw new LlmosError("upstream_error", `token endpoint of ${this.options.host} gave no token`);
    }
    return token;
  }
}
