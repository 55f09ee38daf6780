/**
 * onnxruntime-node, loaded on first use. Loading it maps its native library (tens of MB) and costs
 * ~30 ms of start-up, which commands that never run a model (`analyze --no-run`, `prune --no-run`,
 * `--version`, every bad-input error) need not pay. Files here import its types only
 * (`import type * as ort`) and reach the runtime through `ortApi()`.
 */
import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';

let api: typeof Ort | undefined;

export function ortApi(): typeof Ort {
  return (api ??= createRequire(import.meta.url)('onnxruntime-node') as typeof Ort);
}
