/** Opening a model file of any supported format. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { KpruneError } from '../errors.js';
import { LoadedModel } from './model.js';
import { loadOnnx } from './onnx/index.js';

export type { LoadedModel, ModelFormat, WriteResult } from './model.js';

export async function loadModel(file: string): Promise<LoadedModel> {
  if (path.basename(file).toLowerCase().endsWith('.json')) {
    let text = '';
    try {
      text = (await fs.readFile(file, 'utf8')).slice(0, 4096);
    } catch {
      // fall through to the ONNX reader, which words "no such file" and friends
    }
    if (text.includes('"modelTopology"') || text.includes('"weightsManifest"')) {
      throw new KpruneError('unsupported', 'TensorFlow.js models are not supported yet in this version (ONNX only)', { file });
    }
  }
  return loadOnnx(file);
}
