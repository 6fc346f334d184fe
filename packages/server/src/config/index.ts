export * from "./config.js";
export * from "./load.js";
