/** Loading a model for pruning: it must have at least one prunable 3x3 convolution. */
import { KpruneError } from '../errors.js';
import { LoadOptions, LoadedModel, loadModel } from '../models/index.js';

export async function loadPrunable(file: string, options: LoadOptions = {}): Promise<LoadedModel> {
  const model = await loadModel(file, options);
  if (model.layers.length === 0) {
    const why = model.skipped.length > 0
      ? `; ${model.skipped.length} skipped: ${model.skipped.slice(0, 2).map((s) => `"${s.node}" (${s.reason})`).join(', ')}`
      : '';
    throw new KpruneError('no-3x3', `no prunable 3x3 convolution in the model${why}`, { file });
  }
  return model;
}

/** `--input-shape`: "1,1,28,28" for a single input, or "a=1,3,224,224;b=1,10". */
export function parseInputShape(text: string, inputNames: string[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const parseDims = (s: string) => {
    const dims = s.split(/[,x]/).map((d) => Number(d.trim()));
    if (dims.length === 0 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new KpruneError('usage', `--input-shape "${text}" is not a list of positive integers`, { suggestion: 'e.g. --input-shape 1,3,224,224' });
    }
    return dims;
  };
  if (!text.includes('=')) {
    if (inputNames.length !== 1) {
      throw new KpruneError('usage', `the model has ${inputNames.length} inputs; name them: --input-shape "${inputNames.map((n) => `${n}=...`).join(';')}"`);
    }
    out.set(inputNames[0], parseDims(text));
    return out;
  }
  for (const part of text.split(';').filter((p) => p.trim())) {
    const [name, dims] = part.split('=');
    if (!inputNames.includes(name.trim())) {
      throw new KpruneError('usage', `--input-shape names "${name.trim()}", which is not an input of the model (inputs: ${inputNames.join(', ')})`);
    }
    out.set(name.trim(), parseDims(dims ?? ''));
  }
  return out;
}
