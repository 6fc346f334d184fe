/**
 * Child-process entry: load the native runtime (with the built-here CPU backend in argv[2], or "-" for the shipped
 * one) and print which CPU backend was registered, as one JSON line. A fresh process, because a process can hold
 * one CPU backend only, and because a broken library must not take the caller down.
 */
import { getNativeRuntime } from "./native-runtime.js";

const dir = process.argv[2];
const runtime = getNativeRuntime({ cpuBackendDir: dir && dir !== "-" ? dir : null, logger: null });
process.stdout.write(`${JSON.stringify({ ...runtime.cpuBackend, devices: runtime.devices })}\n`);
