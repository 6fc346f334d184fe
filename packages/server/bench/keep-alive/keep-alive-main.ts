/**
 * `npm run bench:keep-alive` (`-- --quick` for a short run of a few minutes): the keep-alive section of
 * `npm run bench` alone. Writes its tables into docs/performance.md (between its markers) and docs/keep-alive.json.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runKeepAliveBench } from "./keep-alive-bench.js";
import { writeKeepAliveReport } from "./keep-alive-report.js";

const REPO = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  process.argv[1]?.includes("/dist/") ? "../../../../.." : "../../../..",
);
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

/** Runs the section and writes its report; used by this entry and by bench/main.ts. */
export async function keepAliveSection(opts: {
  quick: boolean;
  threads: number;
  durationMs?: number;
  out?: string;
}): Promise<void> {
  const report = await runKeepAliveBench({
    quick: opts.quick,
    threads: opts.threads,
    sharedModels: path.resolve(REPO, "../shared/models"),
    cacheDir: path.join(REPO, ".cache", "models"),
    log,
    ...(opts.durationMs ? { durationMs: opts.durationMs } : {}),
  });
  const out = opts.out ?? path.join(REPO, "docs", "performance.md");
  writeKeepAliveReport(out, path.join(path.dirname(out), "keep-alive.json"), report);
  log(`wrote the keep-alive section of ${out} in ${report.durationSeconds}s`);
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]);
if (isMain) {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      threads: { type: "string", default: "2" },
      duration: { type: "string" },
      out: { type: "string" },
    },
  });
  keepAliveSection({
    quick: values.quick!,
    threads: Number(values.threads),
    ...(values.duration ? { durationMs: Number(values.duration) * 1000 } : {}),
    ...(values.out ? { out: values.out } : {}),
  }).then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
