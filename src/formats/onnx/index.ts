/** The ONNX format behind the LoadedModel contract. */
import path from 'node:path';
import { KpruneError } from '../../errors.js';
import { createSession, outputShapes as runShapes } from '../../runtime/onnx-runtime.js';
import { LoadedModel } from '../model.js';
import { findConv3x3 } from './convs.js';
import { onnxComputeNodes, onnxInputs, onnxInventory, probeModelBytes } from './inventory.js';
import { OnnxModel, readOnnxModel } from './read.js';
import { writeOnnxModel } from './write.js';

export { readOnnxModel } from './read.js';
export type { OnnxModel } from './read.js';

export function isOnnxPath(file: string): boolean {
  return /\.onnx$/i.test(file);
}

export function kprunedPath(file: string): string {
  const dir = path.dirname(file);
  const base = path.basename(file).replace(/\.onnx$/i, '');
  return path.join(dir, `${base}.kpruned.onnx`);
}

export async function loadOnnx(file: string): Promise<LoadedModel> {
  const model: OnnxModel = await readOnnxModel(file);
  const scan = findConv3x3(model);
  return {
    format: 'onnx',
    path: file,
    files: [file, ...[...model.externalFiles.keys()].map((l) => path.join(path.dirname(file), l))],
    formatInfo: {
      irVersion: Number(model.proto.irVersion?.toString() ?? 0),
      opsets: model.opsets.map((o) => `${o.domain || 'ai.onnx'}:${o.version}`).join(', '),
      producer: `${model.proto.producerName ?? ''} ${model.proto.producerVersion ?? ''}`.trim(),
    },
    inputs: onnxInputs(model),
    layers: scan.layers,
    skipped: scan.skipped,
    inventory: (overrides) => onnxInventory(model, overrides),
    async outputShapes(inputShapes) {
      const wanted = onnxComputeNodes(model).map((c) => c.output);
      const session = await createSession(probeModelBytes(model, wanted), { threads: 1 }, file);
      try {
        return await runShapes(session, onnxInputs(model), inputShapes, wanted);
      } finally {
        await session.release();
      }
    },
    defaultOutputPath: () => kprunedPath(file),
    async write(weights, outPath) {
      if (!isOnnxPath(outPath)) {
        throw new KpruneError('usage', `output "${outPath}" should end in .onnx for an ONNX model`);
      }
      const result = await writeOnnxModel(model, weights, outPath);
      return { files: result.files };
    },
  };
}
