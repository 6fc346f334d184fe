import { LlmosError } from "../errors.js";
import type { AuditLog } from "./audit-log.js";
import { formatKey, hashSecret, KEY_PREFIX, newKeyId, newSecret, parseKey, secretMatches } from "./key-secret.js";
import type { Actor, KeyRecord } from "./records.js";
import type { KeyStore, StoredKey } from "./repository.js";
import { normalizeScopes, type KeyScope } from "./scopes.js";
import { toEpochMs, type Now } from "./time-scale.js";

/** What `KeyService.create` takes. */
export interface CreateKeyInput {
  name: string;
  scopes: KeyScope[];
  /** Model allow-list, globs like `llama*` (`*`, `?`); omitted = every model. */
  models?: string[];
  rpm?: number;
  tpm?: number;
  tokensPerDay?: number;
  /** Date, epoch ms or ISO string; must be in the future. */
  expiresAt?: Date | string | number;
}

/** A key and its full secret string (`llmos_<id>_<secret>`), which is shown exactly once. */
export interface IssuedKey {
  key: KeyRecord;
  secret: string;
}

const AUTH_STATE_TTL_MS = 1000;

/**
 * Creates, lists, revokes, rotates and checks API keys. Only SHA-256 hashes of secrets are stored.
 * Key mutations are written to the audit log.
 */
export class KeyService {
  private activeKnown: boolean | undefined;
  private activeCheckedAt = 0;

  constructor(
    private readonly store: KeyStore,
    private readonly audit: AuditLog,
    private readonly now: Now = Date.now,
    /** Called after a key is revoked (e.g. to drop its rate-limit state). */
    private readonly onKeyChanged: (id: string) => void = () => undefined,
  ) {}

  /** Loads the "auth is on" flag; call once after construction. */
  async init(): Promise<void> {
    await this.refreshAuthEnabled();
  }

  /** Creates a key; the returned secret is never stored and cannot be shown again. */
  async create(input: CreateKeyInput, actor: Actor = {}): Promise<IssuedKey> {
    const now = this.now();
    const stored: StoredKey = {
      id: newKeyId(),
      name: validName(input.name),
      secretHash: "",
      scopes: normalizeScopes(input.scopes),
      models: input.models === undefined ? null : validModels(input.models),
      rpm: positiveIntOrNull(input.rpm, "rpm"),
      tpm: positiveIntOrNull(input.tpm, "tpm"),
      tokensPerDay: positiveIntOrNull(input.tokensPerDay, "tokensPerDay"),
      createdAt: now,
      expiresAt: input.expiresAt === undefined ? null : validExpiry(input.expiresAt, now),
      revokedAt: null,
      rotatedAt: null,
    };
    const secret = newSecret();
    stored.secretHash = hashSecret(secret);
    await this.store.insert(stored);
    this.activeKnown = true;
    this.audit.record({
      action: "key.create",
      result: "ok",
      target: stored.id,
      keyId: actor.keyId ?? null,
      remoteAddress: actor.remoteAddress ?? null,
      details: { name: stored.name, scopes: stored.scopes, models: stored.models },
    });
    return { key: toRecord(stored), secret: formatKey(stored.id, secret) };
  }

  /** Every key (revoked ones too), oldest first; never secrets. */
  async list(): Promise<KeyRecord[]> {
    return (await this.store.list()).map(toRecord);
  }

  /** One key; throws `not_found`. */
  async get(id: string): Promise<KeyRecord> {
    return toRecord(await this.mustGet(id));
  }

  /** Revokes a key (idempotent); its secret stops working at once. Throws `not_found`. */
  async revoke(id: string, actor: Actor = {}): Promise<KeyRecord> {
    await this.mustGet(id);
    await this.store.revoke(id, this.now());
    this.onKeyChanged(id);
    await this.refreshAuthEnabled();
    this.audit.record({
      action: "key.revoke",
      result: "ok",
      target: id,
      keyId: actor.keyId ?? null,
      remoteAddress: actor.remoteAddress ?? null,
    });
    return this.get(id);
  }

  /** Issues a new secret for a key (same id, scopes and limits); the old secret stops working. Throws `not_found`, `conflict` when revoked. */
  async rotate(id: string, actor: Actor = {}): Promise<IssuedKey> {
    const existing = await this.mustGet(id);
    if (existing.revokedAt !== null) throw new LlmosError("conflict", `key ${id} is revoked and cannot be rotated`);
    const secret = newSecret();
    if (!(await this.store.updateSecret(id, hashSecret(secret), this.now()))) {
      throw new LlmosError("conflict", `key ${id} is revoked and cannot be rotated`);
    }
    // Rate-limit state is kept: rotating must not reset a key's minute buckets or daily quota.
    this.audit.record({
      action: "key.rotate",
      result: "ok",
      target: id,
      keyId: actor.keyId ?? null,
      remoteAddress: actor.remoteAddress ?? null,
    });
    return { key: await this.get(id), secret: formatKey(id, secret) };
  }

  /**
   * The key a presented secret belongs to. Throws `unauthorized` (one message for every reason a key
   * is refused, so callers learn nothing about which keys exist) when it is malformed, unknown,
   * wrong, revoked or expired.
   */
  async authenticate(presented: string): Promise<KeyRecord> {
    const parsed = parseKey(presented.trim());
    const stored = parsed ? await this.store.get(parsed.id) : undefined;
    if (!parsed || !stored || !secretMatches(parsed.secret, stored.secretHash)) {
      throw new LlmosError("unauthorized", "invalid API key");
    }
    if (stored.revokedAt !== null) throw new LlmosError("unauthorized", "invalid API key: revoked");
    if (stored.expiresAt !== null && stored.expiresAt <= this.now())
      throw new LlmosError("unauthorized", "invalid API key: expired");
    return toRecord(stored);
  }

  /** True once any non-revoked key exists (from the last check; see `checkAuthEnabled`). */
  authEnabled(): boolean {
    return this.activeKnown === true;
  }

  /**
   * Like `authEnabled`, but re-reads the store when the cached answer is older than a second, so a key
   * created by another process (the CLI writing the database directly, another node) turns auth on.
   */
  async checkAuthEnabled(): Promise<boolean> {
    if (this.activeKnown === undefined || this.now() - this.activeCheckedAt > AUTH_STATE_TTL_MS)
      await this.refreshAuthEnabled();
    return this.activeKnown === true;
  }

  private async refreshAuthEnabled(): Promise<void> {
    this.activeKnown = (await this.store.countActive()) > 0;
    this.activeCheckedAt = this.now();
  }

  private async mustGet(id: string): Promise<StoredKey> {
    const stored = await this.store.get(id);
    if (!stored) throw new LlmosError("not_found", `no API key with id ${JSON.stringify(id)}`);
    return stored;
  }
}

/** The public view of a stored key. */
export function toRecord(k: StoredKey): KeyRecord {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    id: k.id,
    name: k.name,
    scopes: k.scopes as KeyScope[],
    models: k.models,
    rpm: k.rpm,
    tpm: k.tpm,
    tokensPerDay: k.tokensPerDay,
    createdAt: new Date(k.createdAt).toISOString(),
    expiresAt: iso(k.expiresAt),
    revokedAt: iso(k.revokedAt),
    rotatedAt: iso(k.rotatedAt),
    prefix: `${KEY_PREFIX}${k.id}_`,
  };
}

function validName(name: unknown): string {
  if (typeof name !== "string" || name.trim() === "" || name.length > 100) {
    throw new LlmosError("invalid_request", "key name must be 1 to 100 characters");
  }
  return name.trim();
}

function validModels(models: unknown): string[] {
  if (!Array.isArray(models) || models.length > 256)
    throw new LlmosError("invalid_request", "models must be a list of at most 256 globs");
  return models.map((m) => {
    if (typeof m !== "string" || m.trim() === "" || m.length > 256) {
      throw new LlmosError("invalid_request", `invalid model glob ${JSON.stringify(m)}`);
    }
    return m.trim();
  });
}

function positiveIntOrNull(value: number | undefined, name: string): number | null {
  if (value === undefined || value === null) return null;
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new LlmosError("invalid_request", `${name} must be a positive integer`);
  return value;
}

function validExpiry(value: Date | string | number, now: number): number {
  const t = toEpochMs(value);
  if (!Number.isFinite(t)) throw new LlmosError("invalid_request", `expiresAt is not a valid time: ${String(value)}`);
  if (t <= now) throw new LlmosError("invalid_request", "expiresAt must be in the future");
  return t;
}
