import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { readGguf } from "./reader.js";
import { summarizeGguf } from "./summary.js";
import { SYNTH_SHAPES, standardShape, synthesizeLlamaModel, type LlamaShape, type SynthShapeName } from "./synth.js";

/** Options of {@link ensureSynthModels}. */
export interface EnsureSynthModelsOptions {
  /** Folder of the cached models (created when missing). */
  outDir: string;
  /** Names to ensure; default all of `shapes`. */
  only?: readonly string[];
  /** Shapes by name; default {@link SYNTH_SHAPES} (resolved with {@link standardShape}). */
  shapes?: Readonly<Record<string, LlamaShape>>;
  /** GGUF whose tokenizer the standard shapes copy (e.g. llama-2-tiny-random); default: byte tokenizer. */
  tokenizerSource?: string;
  /** Progress lines; default: none. */
  log?: (line: string) => void;
}

/** One model handled by {@link ensureSynthModels}. */
export interface EnsuredSynthModel {
  name: string;
  path: string;
  /** True when written now, false when a valid file was already there. */
  created: boolean;
  /** File size in bytes. */
  bytes: number;
  parameterCount: number;
}

function matches(shape: LlamaShape, s: ReturnType<typeof summarizeGguf>): boolean {
  return (
    s.architecture === "llama" &&
    s.embeddingLength === shape.dim &&
    s.blockCount === shape.layers &&
    s.headCount === shape.heads &&
    s.feedForwardLength === shape.ffn &&
    s.quantization === shape.type &&
    (shape.vocab === undefined || s.vocabSize === shape.vocab)
  );
}

/**
 * Creates missing synthetic models as `<outDir>/<name>.gguf`. A file already present is kept when it
 * validates and has the expected shape, and rewritten otherwise (e.g. after an interrupted run).
 */
export async function ensureSynthModels(options: EnsureSynthModelsOptions): Promise<EnsuredSynthModel[]> {
  const log = options.log ?? (() => {});
  const shapes: Readonly<Record<string, LlamaShape>> =
    options.shapes ??
    Object.fromEntries(
      (Object.keys(SYNTH_SHAPES) as SynthShapeName[]).map((n) => [n, standardShape(n, options.tokenizerSource)]),
    );
  const names = options.only ?? Object.keys(shapes);
  for (const n of names) {
    if (!Object.prototype.hasOwnProperty.call(shapes, n)) {
      throw new RangeError(`unknown synthetic model ${JSON.stringify(n)}; known: ${Object.keys(shapes).join(", ")}`);
    }
  }
  mkdirSync(options.outDir, { recursive: true });
  const results: EnsuredSynthModel[] = [];
  for (const name of names) {
    const shape = shapes[name]!;
    const path = join(options.outDir, `${name}.gguf`);
    if (existsSync(path)) {
      try {
        const file = await readGguf(path);
        const summary = summarizeGguf(file);
        if (matches(shape, summary)) {
          log(`${name}: present (${path}, ${summary.parameterSize} parameters)`);
          results.push({ name, path, created: false, bytes: file.fileSize, parameterCount: summary.parameterCount });
          continue;
        }
        log(`${name}: ${path} has a different shape; rewriting`);
      } catch (e) {
        log(`${name}: ${path} is invalid (${e instanceof Error ? e.message : String(e)}); rewriting`);
      }
    }
    log(`${name}: writing ${path} (dim ${shape.dim}, ${shape.layers} layers, ${shape.type})`);
    let lastDecile = -1;
    const started = Date.now();
    await synthesizeLlamaModel(path, shape, {
      onProgress: (written, total) => {
        const decile = Math.floor((written / total) * 10);
        if (decile !== lastDecile) {
          lastDecile = decile;
          log(`${name}: ${decile * 10}% of ${(total / 1024 ** 2).toFixed(1)} MiB`);
        }
      },
    });
    const file = await readGguf(path);
    const summary = summarizeGguf(file);
    log(`${name}: done in ${((Date.now() - started) / 1000).toFixed(1)} s, ${summary.parameterSize} parameters`);
    results.push({ name, path, created: true, bytes: file.fileSize, parameterCount: summary.parameterCount });
  }
  return results;
}
