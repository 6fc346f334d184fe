import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { GpuInfo } from "./inventory.js";

const probeEntry = (() => {
  const ext = fileURLToPath(import.meta.url).endsWith(".ts") ? ".ts" : ".js";
  return fileURLToPath(new URL(`../runner/probe${ext}`, import.meta.url));
})();

/** Runs the GPU probe in a child process (node-llama-cpp's detection); CPU-only on any failure. */
export function probeGpus(
  gpu: "auto" | "off",
  timeoutMs = 60_000,
): Promise<{ backend: string | null; devices: GpuInfo[] }> {
  if (gpu === "off") return Promise.resolve({ backend: null, devices: [] });
  return new Promise((resolve) => {
    execFile(process.execPath, [...process.execArgv, probeEntry, gpu], { timeout: timeoutMs }, (error, stdout) => {
      try {
        const parsed = JSON.parse(stdout.trim().split("\n").pop() ?? "{}") as {
          backend?: string | null;
          devices?: GpuInfo[];
        };
        resolve({ backend: parsed.backend ?? null, devices: parsed.devices ?? [] });
      } catch {
        resolve({ backend: null, devices: [] });
      }
      void error;
    });
  });
}
