export * from "./errors.js";
export * from "./models.js";
export * from "./security.js";
export * from "./store.js";
export * from "./events.js";
export * from "./quantization.js";
export * from "./cluster.js";
export * from "./model-reference.js";
