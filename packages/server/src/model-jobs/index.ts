/** Jobs on model files, run in model-tool worker processes: quantize, importance matrix, quality evaluation. */
export { ModelQuantizer, resolveQuantizeType, type QuantizeProgress, type QuantizeSpec } from "./model-quantizer.js";
export { JobRegistry, nextState, type JobEvent, type JobWork } from "./job-registry.js";
export { QualityJobs } from "./quality-jobs.js";
export { imatrixMismatch } from "./imatrix-match.js";
