/** Opening a model file of any supported format. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { KpruneError, inFile } from '../errors.js';
import type { LoadedModel as ContractModel } from '../model/loaded-model.js';
import type { Recoverable } from '../core/recover/recoverable.js';
import { kprunedPath, loadOnnx } from './onnx/index.js';
import { loadTfjs, tfjsKprunedPath } from './tfjs/index.js';

export type { ModelFormat, WriteResult } from '../model/loaded-model.js';
/** A loaded model as this floor hands it out: the contract, and what recovery may ask of it. */
export type LoadedModel = ContractModel & Recoverable;

/** A TF.js model.json: named .json, or JSON whatever its name (an ONNX file starts with a protobuf tag). */
async function looksLikeJson(file: string): Promise<boolean> {
  if (path.basename(file).toLowerCase().endsWith('.json')) return true;
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(file, 'r');
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(64), 0, 64, 0);
    return /^\s*\{/.test(buffer.subarray(0, bytesRead).toString('latin1'));
  } catch {
    return false; // the ONNX reader words "no such file" and friends
  } finally {
    await handle?.close();
  }
}

/**
 * Where `prune` writes when no output is given, known without loading the model (the CLI says
 * before a run whether it will replace an existing file).
 */
export async function defaultOutputPath(file: string): Promise<string> {
  return (await looksLikeJson(file)) ? tfjsKprunedPath(file) : kprunedPath(file);
}

export interface LoadOptions {
  /**
   * How the written model stores weights: `keep` the original storage (default), or `float32`
   * (TF.js: drop quantization). ONNX weights always keep their element type.
   */
  weights?: 'keep' | 'float32';
  /**
   * ONNX: read the structure and leave large inline tensors in the file, read when asked (memory
   * near the largest tensor, not the whole file): for checking and measuring a model (`analyze
   * --no-run`, reading back a written model), never for writing or running it. TF.js shards are
   * read one tensor at a time already.
   */
  lazy?: boolean;
  /**
   * ONNX, with `lazy`: the model can also be written, its unchanged inline tensors streamed from
   * the input file into the output (formats/onnx/stream-payloads.ts); still never run. For
   * `prune --no-run`.
   */
  stream?: boolean;
}

export async function loadModel(file: string, options: LoadOptions = {}): Promise<LoadedModel> {
  // TF.js detection and its errors (neither format, a weights-only file) live in the TF.js reader.
  if (await looksLikeJson(file)) return loadTfjs(file, options.weights === 'float32' ? { write: { weights: 'float32' } } : {});
  if (options.weights === 'float32') {
    throw new KpruneError('usage', '--weights float32 applies to TF.js models; ONNX weights keep their element type', { file });
  }
  // Tensor checks deep in the reader (data that does not fit its shape) do not know the file.
  return inFile(file, () => loadOnnx(file, { lazy: options.lazy, stream: options.stream }));
}
