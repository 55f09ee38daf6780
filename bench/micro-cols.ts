/**
 * `node dist/bench/micro-cols.js [--threads 1] [--rounds 5] [--reps 5]`: one masked 3x3 convolution
 * (cross, stride 1) trained as pieces (onnxruntime's Conv per piece, dX by Conv/ConvTranspose, dW
 * folded or per image by rules.foldBatch) against one product of its kept columns over the whole
 * batch (pieces.ts `columns`), forward, dX and dW, at the layer shapes of the bundled fixtures
 * (batch 64) and of a ResNet-18 at 56-224 (batch 16). Each case is a training graph of
 * Conv(x * s, W) (loss sum(Y * R); s a trained scalar, so that dX is computed), built twice
 * (pieces.IM2COL swapped), run side by side in one process, rounds interleaved; the ratio
 * columns / pieces of the median step (issue #14: the rule IM2COL applies).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { parseMask } from '../src/core/lattice.js';
import { onnxModelFromBytes } from '../src/formats/onnx/read.js';
import { buildTrainingGraph } from '../src/formats/onnx/training/index.js';
import { IM2COL } from '../src/formats/onnx/training/pieces.js';
import { mulberry32 } from '../src/util/random.js';

const { values: args } = parseArgs({ options: {
  threads: { type: 'string', default: '1' }, rounds: { type: 'string', default: '5' }, reps: { type: 'string', default: '5' },
  cases: { type: 'string' },
} });
const { onnx } = onnxProto;
const AT = onnx.AttributeProto.AttributeType;
// [batch, channels in, channels out, input size, stride]
const CASES: number[][] = args.cases ? args.cases.split(';').map((s) => s.split(',').map(Number)) : [
  [64, 16, 16, 28, 1], [64, 32, 32, 14, 1], [64, 64, 64, 7, 1],
  [16, 64, 64, 28, 1], [16, 64, 64, 14, 1], [16, 128, 128, 14, 1], [16, 128, 128, 7, 1],
  [16, 256, 256, 14, 1], [16, 256, 256, 7, 1], [16, 256, 256, 4, 1], [16, 512, 512, 7, 1], [16, 512, 512, 4, 1], [16, 512, 512, 2, 1],
];
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
const cross = parseMask('010/111/010');
const opts: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: Number(args.threads), interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 4,
  extra: { session: { intra_op: { allow_spinning: '0' } } },
};
const rule = IM2COL.rule;
console.log(`| batch | Cin -> Cout | input | stride | Ho*Wo | pieces (ms) | columns (ms) | columns / pieces | rule takes columns |`);
console.log(`| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |`);
const l0 = os.loadavg()[0];
for (const [n, ci, co, size, stride] of CASES) {
  const ho = Math.floor((size + 2 - 3) / stride) + 1;
  const r = mulberry32(ci * 1000 + size);
  const w = Float32Array.from({ length: co * ci * 9 }, (_, i) => ([1, 3, 4, 5, 7].includes(i % 9) ? r() - 0.5 : 0));
  const x = Float32Array.from({ length: n * ci * size * size }, () => r());
  const model = onnx.ModelProto.encode({
    irVersion: 8, opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'conv',
      node: [{ name: 'm', opType: 'Mul', input: ['x', 's'], output: ['xs'] }, { name: 'c', opType: 'Conv', input: ['xs', 'w'], output: ['y'], attribute: [
        { name: 'kernel_shape', type: AT.INTS, ints: [3, 3] }, { name: 'pads', type: AT.INTS, ints: [1, 1, 1, 1] }, { name: 'strides', type: AT.INTS, ints: [stride, stride] },
      ] }],
      input: [['x', [n, ci, size, size]], ['w', [co, ci, 3, 3]], ['s', [1]]].map(([name, dims]) => ({ name: name as string, type: { tensorType: { elemType: 1, shape: { dim: (dims as number[]).map((d) => ({ dimValue: d })) } } } })),
      output: [{ name: 'y' }],
    },
  }).finish();
  const m = onnxModelFromBytes(model, 'micro.onnx');
  const shapes = new Map([['x', { dims: [n, ci, size, size], type: 'float32' }], ['s', { dims: [1], type: 'float32' }], ['xs', { dims: [n, ci, size, size], type: 'float32' }], ['w', { dims: [co, ci, 3, 3], type: 'float32' }], ['y', { dims: [n, co, ho, ho], type: 'float32' }]]);
  const arms: { s: ort.InferenceSession; feeds: Record<string, ort.Tensor>; fetch: string[]; ms: number[] }[] = [];
  for (const cols of [false, true]) {
    IM2COL.rule = () => cols;
    const b = buildTrainingGraph(m, { trainable: ['w', 's'], head: 'y', shapes, loss: { objective: 'dot' }, masks: new Map([['w', cross]]) });
    if (!b.ok) throw new Error('no graph');
    const g = b.graph;
    const s = await ort.InferenceSession.create(g.bytes, opts);
    const dh = Float32Array.from({ length: n * co * ho * ho }, () => r() - 0.5);
    arms.push({ s, feeds: { [g.data]: new ort.Tensor('float32', x, [n, ci, size, size]), w: new ort.Tensor('float32', w, [co, ci, 3, 3]), s: new ort.Tensor('float32', Float32Array.of(1), [1]), [g.lossInputs.dhead!]: new ort.Tensor('float32', dh, g.flatDims) }, fetch: g.weights.map((v) => v.grad), ms: [] });
  }
  IM2COL.rule = rule;
  for (const a of arms) await a.s.run(a.feeds, a.fetch);
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const a of round % 2 ? [...arms].reverse() : arms) {
      for (let i = 0; i < Number(args.reps); i++) {
        const t0 = performance.now();
        await a.s.run(a.feeds, a.fetch);
        a.ms.push(performance.now() - t0);
      }
    }
  }
  const [p, f] = arms.map((a) => med(a.ms));
  console.log(`| ${n} | ${ci} -> ${co} | ${size}x${size} | ${stride} | ${ho * ho} | ${p.toFixed(2)} | ${f.toFixed(2)} | ${(f / p).toFixed(2)} | ${rule(n, ci, co, ho * ho) ? 'yes' : 'no'} |`);
  for (const a of arms) await a.s.release();
}
console.log(`\n${args.threads} thread(s), medians of ${args.rounds} interleaved rounds of ${args.reps} steps, load ${l0.toFixed(1)}-${os.loadavg()[0].toFixed(1)}, ${new Date().toISOString().slice(0, 16)}Z`);
