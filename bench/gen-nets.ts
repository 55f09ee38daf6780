/**
 * Generated ONNX classifiers for the recovery-engine benchmark (never committed): plain stacks and
 * residual stacks of 3x3 convolutions at any depth, and a ResNet-18 layout. One input channel, so
 * Fashion-MNIST (resized) calibrates them. Seeded He-uniform float32 weights with a centre-heavy
 * 3x3 profile (as bench/vgg16.ts), biases small; each conv is followed by ReLU (after the Add in a
 * residual block), then GlobalAveragePool, Flatten and a Gemm to 10 classes.
 */
import onnxProto from 'onnx-proto';
import { makeTensorBytes, ints, AT } from './vgg16.js';

const { onnx } = onnxProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;

export interface NetSpec {
  name: string;
  kind: 'plain' | 'residual' | 'resnet18';
  /** 3x3 layers (plain, residual). */
  depth?: number;
  /** Channels of the 3x3 layers (plain, residual). */
  channels?: number;
  size: number;
}

export interface Net {
  bytes: Uint8Array;
  conv3x3: number;
  /** Multiply-accumulates of one image, convolutions and Gemm. */
  macs: number;
  params: number;
}

class Builder {
  nodes: INodeProto[] = [];
  inits: ITensorProto[] = [];
  macs = 0;
  params = 0;
  conv3x3 = 0;
  private seq = 0;

  constructor(private readonly seed: number) {}

  tensor(name: string, dims: number[], bound: number, kernel3x3: boolean): string {
    const raw = makeTensorBytes({ name, dims, bound, kernel3x3, seed: this.seed * 10000 + this.seq++ });
    this.inits.push({ name, dims, dataType: 1, rawData: raw });
    this.params += dims.reduce((a, b) => a * b, 1);
    return name;
  }

  conv(x: string, cin: number, cout: number, k: number, stride: number, size: number): { y: string; size: number } {
    const id = `conv${this.nodes.length}`;
    const w = this.tensor(`${id}.weight`, [cout, cin, k, k], Math.sqrt(6 / (cin * k * k)), k === 3);
    const b = this.tensor(`${id}.bias`, [cout], 0.01, false);
    const pad = (k - 1) / 2;
    const out = Math.floor((size + 2 * pad - k) / stride) + 1;
    this.nodes.push({
      name: id, opType: 'Conv', input: [x, w, b], output: [`${id}_out`],
      attribute: [{ name: 'group', type: AT.INT, i: 1 }, ints('kernel_shape', [k, k]), ints('pads', [pad, pad, pad, pad]), ints('strides', [stride, stride]), ints('dilations', [1, 1])],
    });
    this.macs += cout * cin * k * k * out * out;
    if (k === 3) this.conv3x3++;
    return { y: `${id}_out`, size: out };
  }

  op(opType: string, inputs: string[]): string {
    const y = `${opType.toLowerCase()}${this.nodes.length}_out`;
    this.nodes.push({ name: `${opType.toLowerCase()}${this.nodes.length}`, opType, input: inputs, output: [y] });
    return y;
  }

  relu(x: string): string {
    return this.op('Relu', [x]);
  }

  /** A basic block: conv-relu-conv, + shortcut (1x1 projection when the shape changes), relu. */
  block(x: string, cin: number, cout: number, stride: number, size: number): { y: string; size: number } {
    const a = this.conv(x, cin, cout, 3, stride, size);
    const b = this.conv(this.relu(a.y), cout, cout, 3, 1, a.size);
    const short = cin === cout && stride === 1 ? x : this.conv(x, cin, cout, 1, stride, size).y;
    return { y: this.relu(this.op('Add', [b.y, short])), size: b.size };
  }

  head(x: string, channels: number): void {
    const flat = this.op('Flatten', [this.op('GlobalAveragePool', [x])]);
    const w = this.tensor('fc.weight', [10, channels], Math.sqrt(6 / channels), false);
    const b = this.tensor('fc.bias', [10], 0.01, false);
    this.nodes.push({ name: 'fc', opType: 'Gemm', input: [flat, w, b], output: ['logits'], attribute: [{ name: 'transB', type: AT.INT, i: 1 }] });
    this.macs += 10 * channels;
  }
}

export function buildNet(spec: NetSpec, seed = 7): Net {
  const b = new Builder(seed);
  let x = 'input';
  let size = spec.size;
  let channels: number;
  if (spec.kind === 'resnet18') {
    // A stride-2 3x3 stem, then ResNet-18's four stages of two basic blocks (16 3x3 convolutions).
    const stem = b.conv(x, 1, 64, 3, 2, size);
    x = b.relu(stem.y);
    size = stem.size;
    channels = 64;
    for (const [c, s] of [[64, 1], [128, 2], [256, 2], [512, 2]]) {
      for (let i = 0; i < 2; i++) {
        const r = b.block(x, channels, c, i === 0 ? s : 1, size);
        x = r.y;
        size = r.size;
        channels = c;
      }
    }
  } else {
    const depth = spec.depth ?? 8;
    channels = spec.channels ?? 32;
    const stem = b.conv(x, 1, channels, 3, 1, size);
    x = b.relu(stem.y);
    let left = depth - 1;
    while (left > 0) {
      if (spec.kind === 'residual' && left >= 2) {
        x = b.block(x, channels, channels, 1, size).y;
        left -= 2;
      } else {
        x = b.relu(b.conv(x, channels, channels, 3, 1, size).y);
        left -= 1;
      }
    }
  }
  b.head(x, channels);
  const vi = (name: string, dims: (number | string)[]) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } });
  const bytes = onnx.ModelProto.encode({
    irVersion: 8,
    producerName: 'kprune-bench',
    opsetImport: [{ domain: '', version: 13 }],
    graph: { name: spec.name, node: b.nodes, initializer: b.inits, input: [vi('input', ['N', 1, spec.size, spec.size])], output: [vi('logits', ['N', 10])] },
  }).finish();
  return { bytes, conv3x3: b.conv3x3, macs: b.macs, params: b.params };
}
