/**
 * Builds small ONNX models in tests, byte by byte where a test needs something the schema cannot
 * express (fields it does not know). Protobuf messages may be concatenated: the parts are merged,
 * which is how unknown fields are slipped in between known ones.
 */
import onnxProto from 'onnx-proto';
import protobuf from 'protobufjs/minimal.js';

const { onnx } = onnxProto;

export { mulberry32 as seededRandom } from '../../src/util/random.js';
import { mulberry32 } from '../../src/util/random.js';

export function randomFloats(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
}

export function lenField(field: number, payload: Uint8Array): Uint8Array {
  return concat([protobuf.Writer.create().uint32((field << 3) | 2).uint32(payload.length).finish(), payload]);
}

/** An unknown length-delimited field, as a newer schema would write it. */
export function unknownField(field: number, text: string): Uint8Array {
  return lenField(field, Buffer.from(text));
}

export interface ConvSpec {
  name: string;
  input: string;
  output: string;
  weight: string;
  bias?: string;
  group?: number;
  strides?: number[];
  pads?: number[];
  dilations?: number[];
}

export function convNode(c: ConvSpec): onnxProto.onnx.INodeProto {
  const ints = (name: string, v: number[]) => ({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: v });
  return {
    name: c.name,
    opType: 'Conv',
    input: c.bias ? [c.input, c.weight, c.bias] : [c.input, c.weight],
    output: [c.output],
    attribute: [
      { name: 'group', type: onnx.AttributeProto.AttributeType.INT, i: c.group ?? 1 },
      ints('kernel_shape', [3, 3]),
      ints('pads', c.pads ?? [1, 1, 1, 1]),
      ints('strides', c.strides ?? [1, 1]),
      ints('dilations', c.dilations ?? [1, 1]),
    ],
  };
}

export function floatTensor(name: string, dims: number[], values: Float32Array): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: 1, rawData: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)) };
}

export function valueInfo(name: string, dims: (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

export interface TinyModelOptions {
  channels?: number;
  size?: number;
  seed?: number;
  /** Extra bytes appended inside the messages, to test that unknown fields survive. */
  unknown?: { model?: Uint8Array; graph?: Uint8Array; node?: Uint8Array; tensor?: Uint8Array };
  /** Store the conv weights as Constant nodes instead of initializers. */
  constants?: boolean;
}

/**
 * input[N,C,S,S] -> Conv3x3 (w1, b1) -> Relu -> Conv3x3 (w2, no bias) -> output. Weights seeded.
 */
export function tinyConvModel(o: TinyModelOptions = {}): { bytes: Uint8Array; w1: Float32Array; w2: Float32Array; b1: Float32Array } {
  const c = o.channels ?? 4;
  const s = o.size ?? 8;
  const seed = o.seed ?? 1;
  const w1 = randomFloats(c * c * 9, seed);
  const w2 = randomFloats(c * c * 9, seed + 1);
  const b1 = randomFloats(c, seed + 2);
  const tensors = [floatTensor('w1', [c, c, 3, 3], w1), floatTensor('b1', [c], b1), floatTensor('w2', [c, c, 3, 3], w2)];
  const nodes: onnxProto.onnx.INodeProto[] = [];
  if (o.constants) {
    for (const t of tensors) {
      nodes.push({ name: `const_${t.name}`, opType: 'Constant', output: [t.name!], attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { ...t, name: '' } }] });
    }
  }
  nodes.push(
    convNode({ name: 'conv1', input: 'input', output: 'h1', weight: 'w1', bias: 'b1' }),
    { name: 'relu1', opType: 'Relu', input: ['h1'], output: ['h2'] },
    convNode({ name: 'conv2', input: 'h2', output: 'output', weight: 'w2' }),
  );
  const u = o.unknown ?? {};
  const nodeBytes = nodes.map((n, i) => lenField(1, i === nodes.length - 1 && u.node ? concat([onnx.NodeProto.encode(n).finish(), u.node]) : onnx.NodeProto.encode(n).finish()));
  const initBytes = o.constants ? [] : tensors.map((t) => lenField(5, t.name === 'w1' && u.tensor ? concat([onnx.TensorProto.encode(t).finish(), u.tensor]) : onnx.TensorProto.encode(t).finish()));
  const graphRest = onnx.GraphProto.encode({
    name: 'tiny',
    docString: 'a tiny graph',
    input: [valueInfo('input', ['N', c, s, s])],
    output: [valueInfo('output', ['N', c, s, s])],
  }).finish();
  const graph = concat([...nodeBytes, ...initBytes, graphRest, u.graph ?? new Uint8Array(0)]);
  const head = onnx.ModelProto.encode({
    irVersion: 8,
    producerName: 'kprune-test',
    producerVersion: '1',
    docString: 'model doc',
    opsetImport: [{ domain: '', version: 13 }],
    metadataProps: [{ key: 'author', value: 'tests' }],
  }).finish();
  const bytes = concat([head, lenField(7, graph), u.model ?? new Uint8Array(0)]);
  return { bytes, w1, w2, b1 };
}
