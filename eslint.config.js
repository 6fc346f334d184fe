// Lint: typescript-eslint's recommended rules plus the architecture's dependency direction.
// Inside the server: http -> inference -> scheduler -> runtime -> (IPC) -> runner -> engine;
// store, security, config and telemetry are used from above and never import upward.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import prettier from "eslint-config-prettier";

const S = "packages/server/src";

/** Forbids imports of the given server folders from files in `from`. */
function layer(from, forbidden, why) {
  return {
    files: [`${S}/${from}/**/*.ts`],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: forbidden.map((f) => ({
            group: [`**/${f}/*`, `**/${f}`],
            message: `${from} must not import ${f}: ${why}`,
          })),
        },
      ],
    },
  };
}

const upward = "dependencies point one way (http -> inference -> scheduler -> runtime -> runner -> engine)";
const base = "store, security, config and telemetry are used from above and never import upward";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", ".cache/**", "clients/**", "**/*.d.ts"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  // Formatting is Prettier's (`npm run format`, checked by `npm run lint`); no stylistic lint rules.
  prettier,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: "module",
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        URL: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        setImmediate: "readonly",
        performance: "readonly",
        fetch: "readonly",
        AbortController: "readonly",
        TextDecoder: "readonly",
        TextEncoder: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      "@typescript-eslint/no-non-null-assertion": "off",
      "no-constant-condition": ["error", { checkLoops: false }],
    },
  },
  // The protocol package imports nothing.
  {
    files: ["packages/protocol/src/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ regex: "^(?!\\./)", message: "@llmos/protocol imports nothing" }] },
      ],
    },
  },
  // Config is the only reader of the environment: the CLI's entry point hands it to loadConfig, the daemon passes
  // what runners need down (LlmosConfig.environment). One exception, a test hook: runner/test-stall.ts.
  {
    files: ["packages/server/src/**/*.ts", "packages/cli/src/**/*.ts"],
    ignores: ["packages/server/src/config/**", "packages/server/src/runner/test-stall.ts", "packages/cli/src/main.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        { object: "process", property: "env", message: "read settings in config (src/config) and pass them down" },
      ],
    },
  },
  // The SDK has no runtime dependencies: only type imports of the protocol.
  {
    files: ["packages/sdk/src/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["@llmos/server*", "node-llama-cpp", "fastify*"], message: "the SDK depends on fetch only" },
          ],
        },
      ],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  layer("engine", ["runner", "runtime", "scheduler", "inference", "http", "store", "security"], upward),
  layer("runner", ["runtime", "scheduler", "inference", "http", "store", "security"], upward),
  layer(
    "runtime",
    ["scheduler", "inference", "http", "engine/llama-node", "engine/llama-ffi"],
    "the daemon never loads an engine; only runner processes do",
  ),
  layer("scheduler", ["inference", "http", "engine/llama-node", "engine/llama-ffi"], upward),
  // Jobs on model files (quantize, imatrix, eval) use the store and start worker processes through the runtime.
  layer(
    "model-jobs",
    ["http", "inference", "scheduler", "runner/model-tool-worker", "engine/llama-node", "engine/llama-ffi"],
    upward,
  ),
  layer("inference", ["http", "engine/llama-node", "engine/llama-ffi"], upward),
  layer("store", ["http", "inference", "scheduler", "runtime", "runner", "engine", "security"], base),
  layer("security", ["http", "inference", "scheduler", "runtime", "runner", "engine", "store"], base),
  layer(
    "config",
    ["http", "inference", "scheduler", "runtime", "runner", "engine", "store", "security", "telemetry"],
    base,
  ),
  layer(
    "grammar",
    ["http", "inference", "scheduler", "runtime", "runner", "engine", "store", "security", "config", "telemetry"],
    "grammar holds pure functions (JSON Schema -> GBNF) that the http layer and both engines use",
  ),
  // PostgreSQL access (pool, migrations, error mapping) is shared by security and cluster and knows neither.
  layer(
    "db",
    ["http", "inference", "scheduler", "runtime", "runner", "engine", "store", "security", "cluster", "telemetry"],
    base,
  ),
  // The cluster sits beside inference: it reads the scheduler's state and is used by http (forwarding, /api/cluster).
  layer("cluster", ["http", "runner", "engine"], upward),
  layer("telemetry", ["http", "inference", "scheduler", "runtime", "runner", "engine", "store", "security"], base),
  // The usage model's store (SQLite for one node, PostgreSQL shared by a cluster) is used from the scheduler above it.
  layer(
    "usage-store",
    ["http", "inference", "scheduler", "runtime", "runner", "engine", "store", "security", "telemetry"],
    base,
  ),
);
