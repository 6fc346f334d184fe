import type { Command } from "commander";
import type { ApiKeyInfo, CreatedKey, KeyScope } from "llmos";
import type { CliContext } from "../context.js";
import { formatRelative, parseDuration, renderTable } from "../format.js";

interface CreateOptions {
  name: string;
  scopes: string;
  models?: string;
  rpm?: string;
  tpm?: string;
  tokensPerDay?: string;
  expires?: string;
}

function int(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`invalid ${flag} "${value}": expected a whole number`);
  return n;
}

function list(value: string | undefined): string[] | undefined {
  return value === undefined
    ? undefined
    : value
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
}

function printSecret(ctx: CliContext, created: CreatedKey): void {
  ctx.print(`key ${created.key.id} (${created.key.name})`);
  ctx.print(`secret: ${created.secret}`);
  ctx.info("store the secret now: it is not shown again");
}

function limits(k: ApiKeyInfo): string {
  const parts: string[] = [];
  if (k.rpm) parts.push(`${k.rpm} rpm`);
  if (k.tpm) parts.push(`${k.tpm} tpm`);
  if (k.tokensPerDay) parts.push(`${k.tokensPerDay}/day`);
  return parts.join(", ") || "-";
}

/** `llmos keys create|list|revoke|rotate`: API key administration (needs an admin key or the local admin token). */
export function registerKeys(program: Command, ctx: CliContext): void {
  const keys = program.command("keys").description("manage API keys");

  keys
    .command("create")
    .description("create an API key (the secret is printed once)")
    .requiredOption("--name <name>", "key name")
    .option(
      "--scopes <list>",
      "comma-separated scopes: inference, models:read, models:write, admin, metrics",
      "inference",
    )
    .option("--models <list>", "comma-separated models the key may use (default: all)")
    .option("--rpm <n>", "requests per minute")
    .option("--tpm <n>", "tokens per minute")
    .option("--tokens-per-day <n>", "tokens per day")
    .option("--expires <duration>", "expire after this long (e.g. 30d)")
    .action(async (opts: CreateOptions, cmd: Command) => {
      const created = await (
        await ctx.client()
      ).keys.create({
        name: opts.name,
        scopes: (list(opts.scopes) ?? []) as KeyScope[],
        models: list(opts.models),
        rpm: int(opts.rpm, "--rpm"),
        tpm: int(opts.tpm, "--tpm"),
        tokensPerDay: int(opts.tokensPerDay, "--tokens-per-day"),
        expiresAt:
          opts.expires === undefined ? undefined : new Date(Date.now() + parseDuration(opts.expires)).toISOString(),
      });
      if (ctx.json(cmd)) return ctx.printJson(created);
      printSecret(ctx, created);
    });

  keys
    .command("list")
    .alias("ls")
    .description("list API keys")
    .action(async (_opts: unknown, cmd: Command) => {
      const all = await (await ctx.client()).keys.list();
      if (ctx.json(cmd)) return ctx.printJson(all);
      ctx.print(
        renderTable(
          ["ID", "NAME", "SCOPES", "MODELS", "LIMITS", "CREATED", "EXPIRES", "STATUS"],
          all.map((k) => [
            k.id,
            k.name,
            k.scopes.join(","),
            k.models?.join(",") || "all",
            limits(k),
            formatRelative(k.createdAt),
            k.expiresAt ? formatRelative(k.expiresAt) : "never",
            k.revokedAt ? "revoked" : "active",
          ]),
        ),
      );
    });

  keys
    .command("revoke")
    .description("revoke an API key")
    .argument("<id>", "key id")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const key = await (await ctx.client()).keys.revoke(id);
      if (ctx.json(cmd)) return ctx.printJson(key);
      ctx.print(`revoked ${id}`);
    });

  keys
    .command("rotate")
    .description("replace a key's secret (the old secret stops working)")
    .argument("<id>", "key id")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const created = await (await ctx.client()).keys.rotate(id);
      if (ctx.json(cmd)) return ctx.printJson(created);
      printSecret(ctx, created);
    });
}
