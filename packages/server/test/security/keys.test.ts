import fs from "node:fs";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { homePaths } from "../../src/config/config.js";
import { isLlmosError } from "../../src/errors.js";
import { parseKey, SecurityService, SqliteSecurityRepository, SQLITE_MIGRATIONS } from "../../src/security/index.js";
import { openSecurity, sleep, tempHome } from "./helpers.js";

const isCode = (code: string) => (e: unknown) => isLlmosError(e) && e.code === code;

describe("KeyService on SQLite", () => {
  test("create returns the secret once; authenticate, list and get never expose it", async () => {
    const { home, cleanup } = tempHome();
    const security = await openSecurity(home);
    try {
      assert.equal(security.authEnabled(), false);
      const { key, secret } = await security.keys.create({
        name: "ci",
        scopes: ["inference", "models:read"],
        models: ["llama*"],
        rpm: 10,
      });
      assert.match(secret, /^llmos_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
      assert.equal(parseKey(secret)?.id, key.id);
      assert.equal(key.prefix, `llmos_${key.id}_`);
      assert.deepEqual(key.scopes, ["inference", "models:read"]);
      assert.deepEqual(key.models, ["llama*"]);
      assert.equal(key.rpm, 10);
      assert.equal(key.tpm, null);
      assert.equal(security.authEnabled(), true);

      const authed = await security.authenticate(secret);
      assert.equal(authed.id, key.id);
      const listed = await security.keys.list();
      assert.equal(listed.length, 1);
      assert.ok(!JSON.stringify(listed).includes(parseKey(secret)!.secret));
      assert.ok(!("secretHash" in listed[0]!));
      assert.deepEqual(await security.keys.get(key.id), listed[0]);

      // Wrong secret for a real id, a garbage string, a truncated key: all unauthorized.
      const wrong = `llmos_${key.id}_${"A".repeat(43)}`;
      await assert.rejects(security.authenticate(wrong), isCode("unauthorized"));
      await assert.rejects(security.authenticate("not-a-key"), isCode("unauthorized"));
      await assert.rejects(security.authenticate(secret.slice(0, -1)), isCode("unauthorized"));
      await assert.rejects(security.keys.get("000000000000"), isCode("not_found"));
    } finally {
      await security.close();
      cleanup();
    }
  });

  test("only a hash is stored: the secret is absent from the database files", async () => {
    const { home, cleanup } = tempHome();
    const security = await openSecurity(home);
    const { secret } = await security.keys.create({ name: "x", scopes: ["admin"] });
    const rotated = await security.keys.rotate(parseKey(secret)!.id);
    await security.close();
    try {
      const dbPath = homePaths(home).database;
      const bytes = Buffer.concat(
        [dbPath, `${dbPath}-wal`, `${dbPath}-shm`].filter((p) => fs.existsSync(p)).map((p) => fs.readFileSync(p)),
      );
      assert.ok(bytes.length > 0);
      for (const s of [secret, rotated.secret]) {
        const raw = parseKey(s)!.secret;
        assert.equal(bytes.indexOf(raw), -1, "raw secret found in the database file");
        assert.equal(bytes.indexOf(s), -1);
      }
      const db = new Database(dbPath, { readonly: true });
      const row = db.prepare("SELECT secret_hash FROM api_keys").get() as { secret_hash: string };
      db.close();
      assert.match(row.secret_hash, /^[0-9a-f]{64}$/);
      assert.equal((fs.statSync(dbPath).mode & 0o777).toString(8), "600");
    } finally {
      cleanup();
    }
  });

  test("revoke stops a key and turns auth off when it was the last one", async () => {
    const { home, cleanup } = tempHome();
    const security = await openSecurity(home);
    try {
      const a = await security.keys.create({ name: "a", scopes: ["inference"] });
      const b = await security.keys.create({ name: "b", scopes: ["inference"] });
      const revoked = await security.keys.revoke(a.key.id);
      assert.ok(revoked.revokedAt);
      await assert.rejects(security.authenticate(a.secret), isCode("unauthorized"));
      assert.equal((await security.authenticate(b.secret)).id, b.key.id);
      assert.equal(security.authEnabled(), true);
      const again = await security.keys.revoke(a.key.id); // idempotent, first time kept
      assert.equal(again.revokedAt, revoked.revokedAt);
      await security.keys.revoke(b.key.id);
      assert.equal(security.authEnabled(), false);
      await assert.rejects(security.keys.revoke("ffffffffffff"), isCode("not_found"));
      await assert.rejects(security.keys.rotate(a.key.id), isCode("conflict"));
    } finally {
      await security.close();
      cleanup();
    }
  });

  test("rotate keeps id and scopes, the old secret stops working", async () => {
    const { home, cleanup } = tempHome();
    const security = await openSecurity(home);
    try {
      const first = await security.keys.create({ name: "r", scopes: ["models:read"], tpm: 1000 });
      const second = await security.keys.rotate(first.key.id);
      assert.equal(second.key.id, first.key.id);
      assert.deepEqual(second.key.scopes, ["models:read"]);
      assert.equal(second.key.tpm, 1000);
      assert.notEqual(second.secret, first.secret);
      assert.ok(second.key.rotatedAt);
      await assert.rejects(security.authenticate(first.secret), isCode("unauthorized"));
      assert.equal((await security.authenticate(second.secret)).id, first.key.id);
    } finally {
      await security.close();
      cleanup();
    }
  });

  test("expired keys are refused (clock injected) but still count as auth on", async () => {
    const { home, cleanup } = tempHome();
    let now = Date.parse("2026-01-01T00:00:00Z");
    const security = await openSecurity(home, { now: () => now });
    try {
      const { secret } = await security.keys.create({
        name: "e",
        scopes: ["inference"],
        expiresAt: "2026-01-01T01:00:00Z",
      });
      assert.ok(await security.authenticate(secret));
      now = Date.parse("2026-01-01T01:00:00Z");
      await assert.rejects(
        security.authenticate(secret),
        (e: unknown) => isCode("unauthorized")(e) && /expired/.test((e as Error).message),
      );
      assert.equal(await security.checkAuthEnabled(), true);
      await assert.rejects(
        security.keys.create({ name: "p", scopes: ["inference"], expiresAt: "2025-01-01T00:00:00Z" }),
        isCode("invalid_request"),
      );
    } finally {
      await security.close();
      cleanup();
    }
  });

  test("expiry in real time", async () => {
    const { home, cleanup } = tempHome();
    const security = await openSecurity(home);
    try {
      const { secret } = await security.keys.create({
        name: "short",
        scopes: ["inference"],
        expiresAt: Date.now() + 150,
      });
      assert.ok(await security.authenticate(secret));
      await sleep(200);
      await assert.rejects(security.authenticate(secret), isCode("unauthorized"));
    } finally {
      await security.close();
      cleanup();
    }
  });

  test("input validation", async () => {
    const { home, cleanup } = tempHome();
    const security = await openSecurity(home);
    try {
      await assert.rejects(security.keys.create({ name: "", scopes: ["inference"] }), isCode("invalid_request"));
      await assert.rejects(security.keys.create({ name: "x", scopes: [] }), isCode("invalid_request"));
      await assert.rejects(security.keys.create({ name: "x", scopes: ["root" as never] }), isCode("invalid_request"));
      await assert.rejects(
        security.keys.create({ name: "x", scopes: ["inference"], rpm: 0 }),
        isCode("invalid_request"),
      );
      await assert.rejects(
        security.keys.create({ name: "x", scopes: ["inference"], tpm: 1.5 }),
        isCode("invalid_request"),
      );
      await assert.rejects(
        security.keys.create({ name: "x", scopes: ["inference"], models: [""] }),
        isCode("invalid_request"),
      );
      await assert.rejects(
        security.keys.create({ name: "x", scopes: ["inference"], expiresAt: "soon" }),
        isCode("invalid_request"),
      );
      assert.equal((await security.keys.list()).length, 0);
    } finally {
      await security.close();
      cleanup();
    }
  });

  test("keys persist across reopen; migrations run once; another process's key turns auth on", async () => {
    const { home, cleanup } = tempHome();
    const dbPath = homePaths(home).database;
    const daemon = await openSecurity(home);
    try {
      assert.equal(await daemon.checkAuthEnabled(), false);
      // A second handle on the same file (as the CLI would open it) creates a key.
      const cli = await SecurityService.open({ databasePath: dbPath });
      const { key, secret } = await cli.keys.create({ name: "from-cli", scopes: ["admin"] });
      await cli.close();
      await sleep(1100); // past the 1 s cache of the auth-enabled flag
      assert.equal(await daemon.checkAuthEnabled(), true);
      assert.equal((await daemon.authenticate(secret)).id, key.id);

      const db = new Database(dbPath, { readonly: true });
      const versions = db.prepare("SELECT version FROM security_schema_migrations ORDER BY version").all() as {
        version: number;
      }[];
      db.close();
      assert.deepEqual(
        versions.map((v) => v.version),
        SQLITE_MIGRATIONS.map((m) => m.version),
      );
    } finally {
      await daemon.close();
      cleanup();
    }
  });

  test("the audit table is append-only", async () => {
    const { home, cleanup } = tempHome();
    const repo = SqliteSecurityRepository.open(homePaths(home).database);
    try {
      await repo.audit.append([{ action: "config.change", result: "ok", time: Date.now() }]);
      const db = new Database(homePaths(home).database);
      assert.throws(() => db.prepare("UPDATE audit_log SET result = 'error'").run(), /append-only/);
      assert.throws(() => db.prepare("DELETE FROM audit_log").run(), /append-only/);
      db.close();
      assert.equal((await repo.audit.query({})).length, 1);
    } finally {
      await repo.close();
      cleanup();
    }
  });
});
