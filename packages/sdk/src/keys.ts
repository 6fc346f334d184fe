import type { Transport } from "./transport.js";
import type { ApiKeyInfo, CreatedKey } from "@llmos/protocol";
import type { CreateKeyOptions, RequestOptions } from "./types.js";

/** API key administration (`/api/keys`). Reach it as `client.keys`; requests need an admin key. */
export class KeysApi {
  readonly #transport: Transport;

  /** @internal Created by `Client`. */
  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** All keys (secrets are never listed). */
  async list(opts: RequestOptions = {}): Promise<ApiKeyInfo[]> {
    const res = await this.#transport.json<{ keys: ApiKeyInfo[] }>({ method: "GET", path: "/api/keys", ...opts });
    return res.keys;
  }

  /** Creates a key. The returned `secret` is shown only this once. */
  create(opts: CreateKeyOptions): Promise<CreatedKey> {
    const { signal, timeout, ...body } = opts;
    return this.#transport.json<CreatedKey>({ method: "POST", path: "/api/keys", body, signal, timeout });
  }

  /** Revokes a key by id; requests with it fail with `unauthorized` from then on. Returns the revoked key. */
  async revoke(id: string, opts: RequestOptions = {}): Promise<ApiKeyInfo> {
    const res = await this.#transport.json<{ key: ApiKeyInfo }>({
      method: "DELETE",
      path: `/api/keys/${encodeURIComponent(id)}`,
      ...opts,
    });
    return res.key;
  }

  /** Replaces a key's secret (the old one stops working); returns the new secret once. */
  rotate(id: string, opts: RequestOptions = {}): Promise<CreatedKey> {
    return this.#transport.json<CreatedKey>({
      method: "POST",
      path: `/api/keys/${encodeURIComponent(id)}/rotate`,
      body: {},
      ...opts,
    });
  }
}
