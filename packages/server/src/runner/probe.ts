/**
 * One-shot child process that asks node-llama-cpp which GPU backend and devices this node has,
 * prints one JSON line and exits. Kept out of the daemon process so the native library never loads there.
 */
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const wantGpu = process.argv[2] !== "off";
try {
  const llama = await getLlama({
    gpu: wantGpu ? "auto" : false,
    build: "never",
    logLevel: LlamaLogLevel.error,
    maxThreads: 1,
  });
  const devices: Array<{ type: string; name: string; totalVramBytes: number; freeVramBytes: number }> = [];
  if (llama.gpu) {
    const vram = await llama.getVramState();
    const names = await llama.getGpuDeviceNames().catch(() => [] as string[]);
    devices.push({
      type: String(llama.gpu),
      name: names.join(", ") || String(llama.gpu),
      totalVramBytes: vram.total,
      freeVramBytes: vram.free,
    });
  }
  process.stdout.write(JSON.stringify({ backend: llama.gpu || null, devices }) + "\n");
  await llama.dispose();
} catch (error) {
  process.stdout.write(JSON.stringify({ backend: null, devices: [], error: (error as Error).message }) + "\n");
}
process.exit(0);
