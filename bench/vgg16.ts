/**
 * A VGG-16-shaped ONNX model for the benchmark, generated at bench time (never committed): the 13
 * 3x3 convolutions of VGG-16 with their real channel counts, ReLU after each, MaxPool 2x2/2 after
 * each block, then Flatten, Gemm 25088->1024, ReLU, Gemm 1024->1000. Input [1,3,224,224] float32.
 *
 * Seeded random float32 weights (He-uniform, with a mild centre-heavy 3x3 profile so the analysis has
 * something to rank), stored as raw_data initializers. The file (~166 MB) is streamed to disk one
 * tensor at a time: only the protobuf headers are encoded with onnx-proto; each tensor's raw bytes
 * are generated straight into a Float32Array, written, and dropped, so the peak is one tensor.
 */
import { mulberry32 } from '../src/util/random.js';
import { promises as fs } from 'node:fs';
import onnxProto from 'onnx-proto';
import protobuf from 'protobufjs/minimal.js';

const { onnx } = onnxProto;
type INodeProto = onnxProto.onnx.INodeProto;

/** VGG-16 configuration "D": output channels of each 3x3 conv, 'M' = MaxPool 2x2 stride 2. */
export const VGG16_CONFIG: (number | 'M')[] = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'];

// Field numbers from onnx.proto.
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const TENSOR_RAW_DATA = 9;
const WIRE_LEN = 2;

function varint(n: number): Uint8Array {
  return protobuf.Writer.create().uint32(n).finish();
}

function lenPrefix(field: number, length: number): Uint8Array {
  const tag = varint((field << 3) | WIRE_LEN);
  const len = varint(length);
  const out = new Uint8Array(tag.length + len.length);
  out.set(tag, 0);
  out.set(len, tag.length);
  return out;
}

/** A part of the file: either bytes now, or a tensor whose bytes are made when written. */
type Part = { bytes: Uint8Array } | { length: number; make: () => Uint8Array };

const partLength = (p: Part): number => ('bytes' in p ? p.bytes.length : p.length);

/** A seeded float32 tensor, generated only when written (see makeTensorBytes). */
export interface TensorPlan {
  name: string;
  dims: number[];
  /** He-uniform bound sqrt(6 / fanIn); biases use a small constant bound. */
  bound: number;
  /** 3x3 kernels: scale each tap by a centre-heavy profile. */
  kernel3x3: boolean;
  /**
   * 3x3 kernels: elements between consecutive taps. 1 (the default) for ONNX's OIHW, where the 9
   * taps are innermost; in*out for TF.js's HWIO [3,3,in,out], where they are outermost.
   */
  tapStride?: number;
  seed: number;
}

export const elementCount = (dims: number[]): number => dims.reduce((a, b) => a * b, 1);

/** Bytes of a float32 tensor. */
export const tensorBytes = (t: TensorPlan): number => elementCount(t.dims) * 4;

// Centre 1, edges 0.85, corners 0.6: roughly how trained 3x3 kernels distribute magnitude.
const PROFILE = Float32Array.from([0.6, 0.85, 0.6, 0.85, 1, 0.85, 0.6, 0.85, 0.6]);

/** The tensor's float32 values as little-endian bytes, made now (the caller writes and drops them). */
export function makeTensorBytes(t: TensorPlan): Uint8Array {
  const n = elementCount(t.dims);
  const values = new Float32Array(n);
  const r = mulberry32(t.seed);
  const b2 = 2 * t.bound;
  const stride = t.tapStride ?? 1;
  if (t.kernel3x3 && stride === 1) {
    for (let i = 0; i < n; i++) values[i] = (r() * b2 - t.bound) * PROFILE[i % 9];
  } else if (t.kernel3x3) {
    for (let i = 0; i < n; i++) values[i] = (r() * b2 - t.bound) * PROFILE[Math.floor(i / stride) % 9];
  } else {
    for (let i = 0; i < n; i++) values[i] = r() * b2 - t.bound;
  }
  // Float32Array is little-endian on every platform Node runs on, as raw_data requires.
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** initializer field of GraphProto holding a TensorProto whose raw_data is produced lazily. */
function initializerParts(t: TensorPlan): Part[] {
  const head = onnx.TensorProto.encode({ name: t.name, dims: t.dims, dataType: onnx.TensorProto.DataType.FLOAT }).finish();
  const dataLength = tensorBytes(t);
  const rawPrefix = lenPrefix(TENSOR_RAW_DATA, dataLength);
  const tensorLength = head.length + rawPrefix.length + dataLength;
  return [
    { bytes: lenPrefix(GRAPH_INITIALIZER, tensorLength) },
    { bytes: head },
    { bytes: rawPrefix },
    { length: dataLength, make: () => makeTensorBytes(t) },
  ];
}

export function valueInfo(name: string, dims: number[]): onnxProto.onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

export const AT = onnx.AttributeProto.AttributeType;
export const ints = (name: string, v: number[]) => ({ name, type: AT.INTS, ints: v });

export interface GeneratedModel {
  path: string;
  /** Every file of the model (the .onnx, external data, shards). */
  files?: string[];
  /** All files together. */
  bytes: number;
  conv3x3Layers: number;
  params: number;
  /** Weight bytes (float32 tensors), and the largest one. */
  weightBytes: number;
  largestTensorBytes: number;
}

/** The description of a generated model whose files are written: sizes from disk, counts from its plan. */
export async function describeGenerated(files: string[], tensors: TensorPlan[], conv3x3Layers: number): Promise<GeneratedModel> {
  let bytes = 0;
  for (const f of files) bytes += (await fs.stat(f)).size;
  return {
    path: files[0],
    files,
    bytes,
    conv3x3Layers,
    params: tensors.reduce((a, t) => a + elementCount(t.dims), 0),
    weightBytes: tensors.reduce((a, t) => a + tensorBytes(t), 0),
    largestTensorBytes: tensors.reduce((a, t) => Math.max(a, tensorBytes(t)), 0),
  };
}

/** Writes all of `data` at the handle's position. */
export async function writeAll(handle: fs.FileHandle, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) {
    const { bytesWritten } = await handle.write(data, off, data.length - off);
    off += bytesWritten;
  }
}

/**
 * Writes the VGG-16-shaped model to `file`. `classifier` 'full' gives VGG-16's own classifier
 * (25088->4096->4096->1000: 138 M parameters, ~553 MB), 'small' (the default) 25088->1024->1000.
 */
export async function writeVgg16Model(file: string, seed = 16, classifier: 'small' | 'full' = 'small'): Promise<GeneratedModel> {
  const nodes: INodeProto[] = [];
  const tensors: TensorPlan[] = [];
  let x = 'input';
  let channels = 3;
  let size = 224;
  let conv = 0;
  let pool = 0;
  for (const c of VGG16_CONFIG) {
    if (c === 'M') {
      pool++;
      nodes.push({ name: `pool${pool}`, opType: 'MaxPool', input: [x], output: [`pool${pool}_out`], attribute: [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])] });
      x = `pool${pool}_out`;
      size /= 2;
      continue;
    }
    conv++;
    const w = `conv${conv}.weight`;
    const b = `conv${conv}.bias`;
    const fanIn = channels * 9;
    tensors.push({ name: w, dims: [c, channels, 3, 3], bound: Math.sqrt(6 / fanIn), kernel3x3: true, seed: seed * 1000 + conv * 2 });
    tensors.push({ name: b, dims: [c], bound: 0.01, kernel3x3: false, seed: seed * 1000 + conv * 2 + 1 });
    nodes.push({
      name: `conv${conv}`, opType: 'Conv', input: [x, w, b], output: [`conv${conv}_out`],
      attribute: [{ name: 'group', type: AT.INT, i: 1 }, ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1]), ints('strides', [1, 1]), ints('dilations', [1, 1])],
    });
    nodes.push({ name: `relu${conv}`, opType: 'Relu', input: [`conv${conv}_out`], output: [`relu${conv}_out`] });
    x = `relu${conv}_out`;
    channels = c;
  }
  const flat = channels * size * size; // 512 * 7 * 7 = 25088
  nodes.push({ name: 'flatten', opType: 'Flatten', input: [x], output: ['flat'], attribute: [{ name: 'axis', type: AT.INT, i: 1 }] });
  const gemm = (name: string, input: string, output: string, inF: number, outF: number, s: number) => {
    tensors.push({ name: `${name}.weight`, dims: [outF, inF], bound: Math.sqrt(6 / inF), kernel3x3: false, seed: s });
    tensors.push({ name: `${name}.bias`, dims: [outF], bound: 0.01, kernel3x3: false, seed: s + 1 });
    nodes.push({
      name, opType: 'Gemm', input: [input, `${name}.weight`, `${name}.bias`], output: [output],
      attribute: [{ name: 'alpha', type: AT.FLOAT, f: 1 }, { name: 'beta', type: AT.FLOAT, f: 1 }, { name: 'transB', type: AT.INT, i: 1 }],
    });
  };
  if (classifier === 'full') {
    gemm('fc1', 'flat', 'fc1_out', flat, 4096, seed * 1000 + 100);
    nodes.push({ name: 'relu_fc1', opType: 'Relu', input: ['fc1_out'], output: ['fc1_relu'] });
    gemm('fc2', 'fc1_relu', 'fc2_out', 4096, 4096, seed * 1000 + 102);
    nodes.push({ name: 'relu_fc2', opType: 'Relu', input: ['fc2_out'], output: ['fc2_relu'] });
    gemm('fc3', 'fc2_relu', 'output', 4096, 1000, seed * 1000 + 104);
  } else {
    gemm('fc1', 'flat', 'fc1_out', flat, 1024, seed * 1000 + 100);
    nodes.push({ name: 'relu_fc1', opType: 'Relu', input: ['fc1_out'], output: ['fc1_relu'] });
    gemm('fc2', 'fc1_relu', 'output', 1024, 1000, seed * 1000 + 102);
  }

  const graphParts: Part[] = [];
  for (const n of nodes) {
    const enc = onnx.NodeProto.encode(n).finish();
    graphParts.push({ bytes: lenPrefix(GRAPH_NODE, enc.length) }, { bytes: enc });
  }
  for (const t of tensors) graphParts.push(...initializerParts(t));
  graphParts.push({
    bytes: onnx.GraphProto.encode({ name: 'vgg16-bench', input: [valueInfo('input', [1, 3, 224, 224])], output: [valueInfo('output', [1, 1000])] }).finish(),
  });
  const graphLength = graphParts.reduce((a, p) => a + partLength(p), 0);
  const head = onnx.ModelProto.encode({
    irVersion: 8,
    producerName: 'kprune-bench',
    producerVersion: '1',
    opsetImport: [{ domain: '', version: 13 }],
  }).finish();
  const parts: Part[] = [{ bytes: head }, { bytes: lenPrefix(MODEL_GRAPH, graphLength) }, ...graphParts];

  const handle = await fs.open(file, 'w');
  let written = 0;
  try {
    for (const p of parts) {
      const bytes = 'bytes' in p ? p.bytes : p.make();
      if (bytes.length !== partLength(p)) throw new Error(`internal: part length ${bytes.length} != ${partLength(p)}`);
      await writeAll(handle, bytes);
      written += bytes.length;
    }
  } finally {
    await handle.close();
  }
  return {
    path: file, files: [file], bytes: written, conv3x3Layers: conv,
    params: tensors.reduce((a, t) => a + elementCount(t.dims), 0),
    weightBytes: tensors.reduce((a, t) => a + tensorBytes(t), 0),
    largestTensorBytes: tensors.reduce((a, t) => Math.max(a, tensorBytes(t)), 0),
  };
}
