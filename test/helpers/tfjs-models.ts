/**
 * Small TF.js models for the tests: LayersModels built with tf.layers and saved through a save
 * handler as model.json + shards (small shards, two weight groups, quantized copies written with
 * kprune's own quantizer), and a hand-written GraphModel. Weights are seeded.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type * as TF from '../../src/runtime/tfjs/tf.js';
import { Storage, encodeFloats } from '../../src/formats/tfjs/dtypes.js';
import { Tf, tfjsRuntime } from '../../src/runtime/tfjs/backend.js';
import { randomFloats } from './onnx-builder.js';

export async function tfjs(): Promise<Tf> {
  return (await tfjsRuntime()).tf;
}

export type Quantization = 'float32' | 'uint8' | 'uint16' | 'float16';

export interface SaveOptions {
  /** Shard size in bytes (small, so that groups have several shards). */
  shardBytes?: number;
  /** Split the weights into this many manifest groups. */
  groups?: number;
  quantize?: Quantization;
  /** Extra top-level fields of model.json (kept byte for byte by kprune). */
  extra?: Record<string, unknown>;
  /** Python's json.dump spacing, as the converter writes it. */
  pythonSpacing?: boolean;
}

interface Spec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: Record<string, unknown>;
}

/** Writes model.json and shards from a topology and named float32 weights. */
export function writeModelFiles(dir: string, topology: unknown, format: 'layers-model' | 'graph-model', weights: { spec: Spec; data: Uint8Array }[], options: SaveOptions = {}): string {
  mkdirSync(dir, { recursive: true });
  const groupCount = Math.max(1, Math.min(options.groups ?? 1, weights.length));
  const perGroup = Math.ceil(weights.length / groupCount);
  const manifest = [];
  for (let g = 0; g < groupCount; g++) {
    const mine = weights.slice(g * perGroup, (g + 1) * perGroup);
    const data = Buffer.concat(mine.map((w) => w.data));
    const shard = options.shardBytes ?? (data.length || 1);
    const count = Math.max(1, Math.ceil(data.length / shard));
    const paths: string[] = [];
    for (let k = 0; k < count; k++) {
      const name = `group${g + 1}-shard${k + 1}of${count}.bin`;
      writeFileSync(path.join(dir, name), data.subarray(k * shard, Math.min(data.length, (k + 1) * shard)));
      paths.push(name);
    }
    manifest.push({ paths, weights: mine.map((w) => w.spec) });
  }
  const doc = { format, generatedBy: 'kprune tests', convertedBy: null, modelTopology: topology, ...(options.extra ?? {}), weightsManifest: manifest };
  const text = options.pythonSpacing
    ? JSON.stringify(doc).replace(/("(?:[^"\\]|\\.)*")|([,:])/g, (m, s: string | undefined, p: string | undefined) => (s !== undefined ? s : `${p} `))
    : JSON.stringify(doc);
  const file = path.join(dir, 'model.json');
  writeFileSync(file, text);
  return file;
}

/** Encodes float32 weights in the wanted storage with kprune's quantizer. */
export function encodeWeights(named: { name: string; shape: number[]; values: Float32Array }[], quantize: Quantization = 'float32'): { spec: Spec; data: Uint8Array }[] {
  const storage: Storage = quantize === 'float32' ? { kind: 'plain', dtype: 'float32' } : quantize === 'float16' ? { kind: 'float16' } : { kind: 'affine', dtype: quantize, min: 0, scale: 1 };
  return named.map((w) => {
    const enc = encodeFloats(storage, w.values);
    const s = enc.storage;
    const quantization = s.kind === 'affine' ? { dtype: s.dtype, min: s.min, scale: s.scale } : s.kind === 'float16' ? { dtype: 'float16' } : undefined;
    return { spec: { name: w.name, shape: w.shape, dtype: 'float32', ...(quantization ? { quantization } : {}) }, data: enc.bytes };
  });
}

/** Gives every weight of a model seeded values in [-0.5, 0.5). */
export function seedWeights(tf: Tf, model: TF.LayersModel, seed: number): void {
  model.setWeights(model.weights.map((w, i) => {
    const shape = w.shape as number[];
    const v = randomFloats(shape.reduce((a, b) => a * b, 1), seed + i).map((x) => x * 0.5);
    return tf.tensor(v, shape);
  }));
}

/** Saves a LayersModel through a save handler as model.json + shards. */
export async function saveLayersModel(tf: Tf, model: TF.LayersModel, dir: string, options: SaveOptions = {}): Promise<string> {
  let saved: TF.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    saved = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const a = saved!;
  const buf = new Uint8Array(a.weightData as ArrayBuffer);
  let at = 0;
  const named = (a.weightSpecs ?? []).map((s) => {
    const n = s.shape.reduce((x, y) => x * y, 1);
    const values = new Float32Array(buf.slice(at, at + 4 * n).buffer);
    at += 4 * n;
    return { name: s.name, shape: s.shape, values };
  });
  return writeModelFiles(dir, a.modelTopology, 'layers-model', encodeWeights(named, options.quantize), options);
}

/**
 * Sequential: Conv2D same + relu, Conv2D valid stride 2, Conv2D dilation 2, DepthwiseConv2D,
 * SeparableConv2D, a 1x1 Conv2D, Flatten, Dense. Input 12x12x3.
 */
export function sequentialModel(tf: Tf): TF.LayersModel {
  const m = tf.sequential({ name: 'seq' });
  m.add(tf.layers.conv2d({ inputShape: [12, 12, 3], filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c_same' }));
  m.add(tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'valid', name: 'c_stride' }));
  m.add(tf.layers.conv2d({ filters: 8, kernelSize: 3, dilationRate: 2, padding: 'same', activation: 'tanh', name: 'c_dil' }));
  m.add(tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', name: 'dw' }));
  m.add(tf.layers.separableConv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'sep' }));
  m.add(tf.layers.conv2d({ filters: 4, kernelSize: 1, name: 'c_1x1' }));
  m.add(tf.layers.flatten({ name: 'flat' }));
  m.add(tf.layers.dense({ units: 7, name: 'head' }));
  return m;
}

/**
 * Functional, with a nested Sequential (Conv2D + DepthwiseConv2D), a Conv2D shared by two branches,
 * a residual Add, a Conv2D without bias, global pooling and a Dense head. Input 10x10x3.
 */
export function functionalModel(tf: Tf): TF.LayersModel {
  const inner = tf.sequential({ name: 'block' });
  inner.add(tf.layers.conv2d({ inputShape: [10, 10, 4], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'block_conv' }));
  inner.add(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'block_dw' }));
  const input = tf.input({ shape: [10, 10, 3], name: 'image' });
  const stem = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'stem' }).apply(input) as TF.SymbolicTensor;
  const blocked = inner.apply(stem) as TF.SymbolicTensor;
  const shared = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'shared' });
  const a = shared.apply(blocked) as TF.SymbolicTensor;
  const b = shared.apply(stem) as TF.SymbolicTensor;
  const sum = tf.layers.add({ name: 'sum' }).apply([a, b]) as TF.SymbolicTensor;
  const down = tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu', name: 'down' }).apply(sum) as TF.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(down) as TF.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, name: 'logits' }).apply(pooled) as TF.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'func' });
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const ints = (v: number[]) => ({ list: { i: v.map(String) } });
const constNode = (name: string, shape: number[]) => ({
  name, op: 'Const', attr: { value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: shape.map((d) => ({ size: String(d) })) } } }, dtype: { type: 'DT_FLOAT' } },
});

/**
 * A GraphModel by hand: Placeholder [-1,8,8,3] -> Conv2D (SAME) -> BiasAdd -> Relu ->
 * _FusedConv2D [BiasAdd, Relu] (stride 2, SAME) -> DepthwiseConv2dNative (VALID, multiplier 2) ->
 * FusedDepthwiseConv2dNative [BiasAdd] (EXPLICIT pads) -> Identity.
 */
export function graphModelFiles(dir: string, options: SaveOptions = {}): string {
  const shapes: Record<string, number[]> = {
    'c1/filter': [3, 3, 3, 4], 'c1/bias': [4], 'c2/filter': [3, 3, 4, 6], 'c2/bias': [6], 'dw/filter': [3, 3, 6, 2], 'dw2/filter': [3, 3, 12, 1], 'dw2/bias': [12],
  };
  const nodes = [
    { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: '-1' }, { size: '8' }, { size: '8' }, { size: '3' }] } } } },
    ...Object.entries(shapes).map(([n, s]) => constNode(n, s)),
    { name: 'c1/Conv2D', op: 'Conv2D', input: ['x', 'c1/filter'], attr: { T: { type: 'DT_FLOAT' }, strides: ints([1, 1, 1, 1]), padding: { s: b64('SAME') }, data_format: { s: b64('NHWC') }, dilations: ints([1, 1, 1, 1]), use_cudnn_on_gpu: { b: true }, explicit_paddings: { list: {} } } },
    { name: 'c1/BiasAdd', op: 'BiasAdd', input: ['c1/Conv2D', 'c1/bias'], attr: { T: { type: 'DT_FLOAT' }, data_format: { s: b64('NHWC') } } },
    { name: 'c1/Relu', op: 'Relu', input: ['c1/BiasAdd'], attr: { T: { type: 'DT_FLOAT' } } },
    { name: 'c2', op: '_FusedConv2D', input: ['c1/Relu', 'c2/filter', 'c2/bias'], attr: { T: { type: 'DT_FLOAT' }, num_args: { i: '1' }, strides: ints([1, 2, 2, 1]), padding: { s: b64('SAME') }, data_format: { s: b64('NHWC') }, dilations: ints([1, 1, 1, 1]), fused_ops: { list: { s: [b64('BiasAdd'), b64('Relu')] } }, epsilon: { f: 0 }, explicit_paddings: { list: {} } } },
    { name: 'dw', op: 'DepthwiseConv2dNative', input: ['c2', 'dw/filter'], attr: { T: { type: 'DT_FLOAT' }, strides: ints([1, 1, 1, 1]), padding: { s: b64('VALID') }, data_format: { s: b64('NHWC') }, dilations: ints([1, 1, 1, 1]), explicit_paddings: { list: {} } } },
    { name: 'dw2', op: 'FusedDepthwiseConv2dNative', input: ['dw', 'dw2/filter', 'dw2/bias'], attr: { T: { type: 'DT_FLOAT' }, num_args: { i: '1' }, strides: ints([1, 1, 1, 1]), padding: { s: b64('EXPLICIT') }, explicit_paddings: ints([0, 0, 1, 0, 0, 1, 0, 0]), data_format: { s: b64('NHWC') }, dilations: ints([1, 1, 1, 1]), fused_ops: { list: { s: [b64('BiasAdd')] } } } },
    { name: 'Identity', op: 'Identity', input: ['dw2'], attr: { T: { type: 'DT_FLOAT' } } },
  ];
  const topology = { node: nodes, library: {}, versions: { producer: 1286, minConsumer: 12 } };
  const named = Object.entries(shapes).map(([name, shape], i) => ({ name, shape, values: randomFloats(shape.reduce((a, b) => a * b, 1), 100 + i).map((v) => v * 0.5) }));
  return writeModelFiles(dir, topology, 'graph-model', encodeWeights(named, options.quantize), options);
}

export interface TfjsCase {
  name: string;
  kind: 'layers' | 'graph';
  inputDims: number[];
  make: (to: string, quantize: Quantization) => Promise<string>;
}

/**
 * The TF.js models the tests prune: a Sequential, a functional model with a nested one, and a
 * hand-written GraphModel, each saved over several shards. `withExtras` adds model.json fields that
 * kprune must keep as they are.
 */
export function tfjsCases(withExtras = false): TfjsCase[] {
  return [
    {
      name: 'sequential', kind: 'layers', inputDims: [2, 12, 12, 3],
      make: async (to, quantize) => {
        const tf = await tfjs();
        const m = sequentialModel(tf);
        seedWeights(tf, m, 11);
        const extra = withExtras ? { userDefinedMetadata: { note: 'kept' }, kprune_unknown_field: [1, 2, 3] } : undefined;
        return saveLayersModel(tf, m, to, { shardBytes: 512, groups: 2, quantize, ...(extra ? { extra } : {}) });
      },
    },
    {
      name: 'functional-nested', kind: 'layers', inputDims: [2, 10, 10, 3],
      make: async (to, quantize) => {
        const tf = await tfjs();
        const m = functionalModel(tf);
        seedWeights(tf, m, 23);
        return saveLayersModel(tf, m, to, { shardBytes: 256, quantize, pythonSpacing: true });
      },
    },
    {
      name: 'graph', kind: 'graph', inputDims: [2, 8, 8, 3],
      make: async (to, quantize) => graphModelFiles(to, {
        shardBytes: 128, groups: 2, quantize, ...(withExtras ? { extra: { signature: { inputs: { x: { name: 'x:0' } } } } } : {}),
      }),
    },
  ];
}
