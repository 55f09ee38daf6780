/** Training graphs for onnxruntime: forward, loss and gradients as one ONNX model. */
export { buildForwardGraph, buildTrainingGraph, computedValues, headValue, LOSS_OUTPUT } from './build.js';
export type { MissingGradient, TrainableInput, TrainingBuild, TrainingGraph, TrainingGraphSpec, ValueShape } from './build.js';
export type { LossSpec } from './loss.js';
export { RULES, RULES_BY_OP } from './rules.js';
