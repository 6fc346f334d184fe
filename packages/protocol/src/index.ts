export * from "./errors.js";
export * from "./models.js";
