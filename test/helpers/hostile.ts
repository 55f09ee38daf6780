/**
 * Small hostile inputs, built in a few milliseconds: files that declare far more than they hold
 * (gigabyte images, arrays, inputs and tensors in a few hundred bytes), non-finite weights, names
 * defined twice, deep nesting, terminal escapes in names. Shared by the bad-input tests and the
 * fuzz families.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { deflateSync, gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import onnxProto from 'onnx-proto';
import { floatTensor, tinyConvModel, valueInfo } from './onnx-builder.js';
import { encodeWeights, writeModelFiles } from './tfjs-models.js';

const { onnx } = onnxProto;
type Model = onnxProto.onnx.ModelProto;

export function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Decodes a model, lets `edit` change it, encodes it again. */
export function editModel(bytes: Uint8Array, edit: (m: Model) => void): Uint8Array {
  const m = onnx.ModelProto.decode(bytes);
  edit(m);
  return onnx.ModelProto.encode(m).finish();
}

/** The tiny two-conv model (input [N,c,s,s]); options as tinyConvModel's. */
export function tiny(options: Parameters<typeof tinyConvModel>[0] = {}): Uint8Array {
  return tinyConvModel(options).bytes;
}

/** A second initializer named like the first conv weight (onnxruntime runs the first, a map keeps the last). */
export function duplicateInitializer(): Uint8Array {
  return editModel(tiny(), (m) => {
    m.graph!.initializer!.push(floatTensor('w1', [4, 4, 3, 3], new Float32Array(144).fill(0.5)));
  });
}

/** A Constant node whose output is also an initializer's name. */
export function constantShadowingInitializer(): Uint8Array {
  return editModel(tiny(), (m) => {
    const t = floatTensor('', [4, 4, 3, 3], new Float32Array(144).fill(0.25));
    m.graph!.node!.unshift({ name: 'shadow', opType: 'Constant', output: ['w1'], attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t }] });
  });
}

/** A valid model with `n` extra value_info entries: a graph of more fields than a call spread takes. */
export function manyGraphFields(n: number): Uint8Array {
  return editModel(tiny(), (m) => {
    for (let i = 0; i < n; i++) m.graph!.valueInfo!.push({ name: `v${i}` });
  });
}

/** A sparse initializer declaring `dims` with a single value: gigabytes when made dense. */
export function sparseInitializer(dims: number[]): Uint8Array {
  return editModel(tiny(), (m) => {
    m.graph!.sparseInitializer = [{
      values: floatTensor('big', [1], Float32Array.of(1)),
      indices: { name: 'big_idx', dims: [1], dataType: 7, int64Data: [0] },
      dims,
    }];
  });
}

/** The tiny model with its input (and output) declared at `size` x `size`. */
export function declaredInput(size: number, channels = 4): Uint8Array {
  return editModel(tiny({ channels }), (m) => {
    m.graph!.input = [valueInfo('input', ['N', channels, size, size])];
    m.graph!.output = [valueInfo('output', ['N', channels, size, size])];
  });
}

/** The tiny model with one weight of its first conv replaced by `value` (NaN, Infinity). */
export function weightValue(value: number, channels = 4): Uint8Array {
  return editModel(tiny({ channels }), (m) => {
    const w1 = m.graph!.initializer!.find((t) => t.name === 'w1')!;
    const raw = new Float32Array(new Uint8Array(w1.rawData!).buffer);
    raw[3] = value;
    w1.rawData = new Uint8Array(raw.buffer);
  });
}

/** The tiny model with a node renamed: names are printed, so they may carry terminal escapes. */
export function nodeNamed(name: string): Uint8Array {
  return editModel(tiny(), (m) => {
    m.graph!.node!.find((n) => n.name === 'conv1')!.name = name;
  });
}

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])));
  return Buffer.concat([head, data, crc]);
}

/**
 * A PNG declaring width x height (8-bit gray) whose image data is a deflate stream of zeros: the
 * header says the size, the stream holds `rows` rows of it (all of them when omitted).
 */
export function pngDeclaring(width: number, height: number, rows = height): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8 bits, gray, deflate, adaptive filtering, no interlace
  const idat = deflateSync(Buffer.alloc(rows * (width + 1)));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', new Uint8Array(0))]);
}

/** An .npy header declaring `shape` (uint8), followed by only `bytes` bytes of data (zeros). */
export function npyDeclaring(shape: number[], bytes = 16): Uint8Array {
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const out = Buffer.alloc(10 + header.length + bytes);
  out.set([0x93, ...Buffer.from('NUMPY'), 1, 0, header.length & 0xff, header.length >> 8]);
  out.write(header, 10, 'latin1');
  return out;
}

/** An .npz (deflated) of the given entries. */
export function npz(entries: Record<string, Uint8Array>, level: 0 | 6 | 9 = 9): Uint8Array {
  return zipSync(Object.fromEntries(Object.entries(entries).map(([k, v]) => [`${k}.npy`, v])), { level });
}

/**
 * A zip bomb in the shape of an .npz: `x.npy` declares `shape` (uint8) and its deflated data really
 * inflates to all of it (zeros compress about 1,000-fold).
 */
export function npzBomb(shape: number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  return npz({ x: npyDeclaring(shape, count) });
}

/** A gzipped IDX images file whose header declares `dims` but which holds only `bytes` bytes of pixels. */
export function idxDeclaring(dims: number[], bytes = 16): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(0x0800 | dims.length, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return gzipSync(Buffer.concat([header, Buffer.alloc(bytes)]));
}

/** JSON text of an array nested `depth` deep. */
export function deepArray(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

/**
 * A TF.js LayersModel (one 3x3 Conv2D, uint8-quantized weights) written to `dir`; `quantization`
 * replaces the kernel's range, e.g. one that overflows float32 when dequantized (null: float32
 * weights, `kernel` as given).
 */
export function tfjsQuantized(dir: string, quantization?: { min: number; scale: number } | null, kernel = Float32Array.from({ length: 36 }, (_, i) => Math.sin(i))): string {
  const weights = encodeWeights([
    { name: 'conv/kernel', shape: [3, 3, 1, 4], values: kernel },
    { name: 'conv/bias', shape: [4], values: new Float32Array(4) },
  ], quantization === null ? 'float32' : 'uint8');
  if (quantization) Object.assign(weights[0].spec.quantization!, quantization);
  return writeModelFiles(dir, {
    class_name: 'Sequential',
    config: { name: 'seq', layers: [{ class_name: 'Conv2D', config: { name: 'conv', filters: 4, kernel_size: [3, 3], strides: [1, 1], padding: 'same', data_format: 'channels_last', dilation_rate: [1, 1], activation: 'linear', use_bias: true, batch_input_shape: [null, 6, 6, 1], dtype: 'float32' } }] },
    keras_version: 'tfjs-layers 4.22.0', backend: 'tensor_flow.js',
  }, 'layers-model', weights);
}

/** A Relu node whose output has the name of an initializer (the second conv's weight). */
export function nodeOutputShadowingInitializer(): Uint8Array {
  return editModel(tiny(), (m) => {
    m.graph!.node!.find((n) => n.name === 'relu1')!.output = ['w2'];
    m.graph!.node!.find((n) => n.name === 'conv2')!.input![0] = 'w2';
  });
}
