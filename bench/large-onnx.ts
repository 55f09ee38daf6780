/**
 * A large ONNX model for bench/large.ts, generated at bench time (never committed): a chain of
 * `layers` Conv 3x3 (channels -> channels, pads 1) + ReLU on a tiny [1, channels, spatial, spatial]
 * input, so that the weights are big (60 x 1024 x 1024 x 9 float32 = 2.26 GB by default, over 2 GiB)
 * and running it is cheap. Opset 13, IR 8.
 *
 * Every initializer lives in EXTERNAL DATA (data_location = EXTERNAL, external_data entries
 * location / offset / length), by default all in one `weights.bin` beside `model.onnx`, as
 * `onnx.save_model(..., save_as_external_data=True)` writes it (so offsets pass 2^31), or spread over
 * `dataFiles` files. The .onnx itself is a few tens of KB, encoded with onnx-proto; the data is
 * streamed one tensor at a time (made, written, dropped: the generator's peak is one tensor).
 * Seeded weights, as bench/vgg16.ts makes them.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { AT, GeneratedModel, TensorPlan, ints, makeTensorBytes, tensorBytes, valueInfo, writeAll, describeGenerated } from './vgg16.js';

const { onnx } = onnxProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;

export interface LargeOnnxOptions {
  /** Conv 3x3 layers (default 60). */
  layers?: number;
  /** Channels of every layer (default 1024: 37.7 MB of float32 per kernel). */
  channels?: number;
  /** Input height and width (default 4). */
  spatial?: number;
  /** External data files the tensors are spread over, in order (default 1). */
  dataFiles?: number;
  seed?: number;
}

export const LARGE_ONNX_DEFAULTS: Required<LargeOnnxOptions> = { layers: 60, channels: 1024, spatial: 4, dataFiles: 1, seed: 2048 };

/** Writes `model.onnx` and its external data file(s) into `dir` (created if needed). */
export async function writeLargeOnnxModel(dir: string, options: LargeOnnxOptions = {}): Promise<GeneratedModel> {
  const o = { ...LARGE_ONNX_DEFAULTS, ...options };
  await fs.mkdir(dir, { recursive: true });
  const c = o.channels;
  const nodes: INodeProto[] = [];
  const tensors: TensorPlan[] = [];
  let x = 'input';
  for (let i = 1; i <= o.layers; i++) {
    const w = `conv${i}.weight`;
    const b = `conv${i}.bias`;
    tensors.push({ name: w, dims: [c, c, 3, 3], bound: Math.sqrt(6 / (c * 9)), kernel3x3: true, seed: o.seed * 1000 + i * 2 });
    tensors.push({ name: b, dims: [c], bound: 0.01, kernel3x3: false, seed: o.seed * 1000 + i * 2 + 1 });
    nodes.push({
      name: `conv${i}`, opType: 'Conv', input: [x, w, b], output: [`conv${i}_out`],
      attribute: [{ name: 'group', type: AT.INT, i: 1 }, ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1]), ints('strides', [1, 1]), ints('dilations', [1, 1])],
    });
    const out = i === o.layers ? 'output' : `relu${i}_out`;
    nodes.push({ name: `relu${i}`, opType: 'Relu', input: [`conv${i}_out`], output: [out] });
    x = out;
  }

  // Tensors go to the data files in order, about the same number of bytes in each.
  const fileCount = Math.max(1, Math.min(o.dataFiles, tensors.length));
  const fileNames = fileCount === 1 ? ['weights.bin'] : Array.from({ length: fileCount }, (_, k) => `weights-${k + 1}.bin`);
  const weightBytes = tensors.reduce((a, t) => a + tensorBytes(t), 0);
  const perFile = weightBytes / fileCount;

  const initializers: ITensorProto[] = [];
  const handles: fs.FileHandle[] = [];
  const files: string[] = [];
  try {
    let k = 0;
    let offset = 0;
    let before = 0; // bytes in the files before file k
    handles.push(await fs.open(path.join(dir, fileNames[0]), 'w'));
    for (const t of tensors) {
      const length = tensorBytes(t);
      if (k < fileCount - 1 && offset > 0 && before + offset + length / 2 > perFile * (k + 1)) {
        before += offset;
        k++;
        offset = 0;
        handles.push(await fs.open(path.join(dir, fileNames[k]), 'w'));
      }
      await writeAll(handles[k], makeTensorBytes(t));
      initializers.push({
        name: t.name,
        dims: t.dims,
        dataType: onnx.TensorProto.DataType.FLOAT,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: fileNames[k] },
          { key: 'offset', value: String(offset) },
          { key: 'length', value: String(length) },
        ],
      });
      offset += length;
    }
  } finally {
    for (const h of handles) await h.close();
  }
  files.push(...fileNames.slice(0, handles.length).map((n) => path.join(dir, n)));

  const model = onnx.ModelProto.encode({
    irVersion: 8,
    producerName: 'kprune-bench',
    producerVersion: '1',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'large-onnx-bench',
      node: nodes,
      initializer: initializers,
      input: [valueInfo('input', [1, c, o.spatial, o.spatial])],
      output: [valueInfo('output', [1, c, o.spatial, o.spatial])],
    },
  }).finish();
  const modelFile = path.join(dir, 'model.onnx');
  await fs.writeFile(modelFile, model);
  files.unshift(modelFile);

  return describeGenerated(files, tensors, o.layers);
}
