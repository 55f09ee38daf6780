/**
 * `node dist/bench/micro-conv.js`: a cross-masked 3x3 convolution whose weights are a graph input
 * (as in kprune's training graph), written as its pieces (1x3 + 2x1 dilated, summed: 5/9 of the
 * multiplications) against one dense 3x3 Conv of the masked weights, timed side by side in
 * onnxruntime (rounds interleaved, medians) at the shapes of the bundled models (issue #14).
 */
import { parseArgs } from 'node:util';
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { mulberry32 } from '../src/util/random.js';

const { onnx } = onnxProto;
const AT = onnx.AttributeProto.AttributeType;
type Node = onnxProto.onnx.INodeProto;
const { values } = parseArgs({ options: { threads: { type: 'string', default: '1' }, rounds: { type: 'string', default: '5' }, reps: { type: 'string', default: '20' }, shapes: { type: 'string' } } });

function model(inputs: { name: string; dims: number[] }[], output: string, nodes: Node[], inits: onnxProto.onnx.ITensorProto[] = [], ms = false): Uint8Array {
  const vi = (name: string, dims?: number[]) => ({ name, type: { tensorType: { elemType: 1, shape: dims ? { dim: dims.map((d) => ({ dimValue: d })) } : undefined } } });
  return onnx.ModelProto.encode({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }, ...(ms ? [{ domain: 'com.microsoft', version: 1 }] : [])],
    graph: { name: 'g', node: nodes, input: inputs.map((i) => vi(i.name, i.dims)), output: [vi(output)], initializer: inits },
  }).finish();
}
const n = (opType: string, input: string[], output: string, attribute: onnxProto.onnx.IAttributeProto[] = []): Node => ({ name: output, opType, input, output: [output], attribute });
const ints = (name: string, v: number[]) => ({ name, type: AT.INTS, ints: v });
const rand = (len: number, seed: number) => { const r = mulberry32(seed); return Float32Array.from({ length: len }, () => r() * 2 - 1); };

// [N, C, O, H, group]: the dense layers of the bundled VGG and ResNet, then the depthwise ones of dwsep.
const shapes: number[][] = values.shapes ? JSON.parse(values.shapes) : [[64, 1, 16, 28], [64, 16, 16, 28], [64, 16, 32, 14], [64, 32, 32, 14], [64, 32, 64, 7], [64, 64, 64, 7],
  [64, 16, 16, 28, 16], [64, 32, 32, 28, 32], [64, 64, 64, 14, 64], [64, 128, 128, 7, 128]];
for (const [N, C0, O, H, G = 1] of shapes) {
  const C = C0 / G;
  const w = rand(O * C * 9, 2);
  const w13 = new Float32Array(O * C * 3);
  const w21 = new Float32Array(O * C * 2);
  for (let i = 0; i < O * C; i++) {
    for (let j = 0; j < 9; j++) if (j !== 1 && j !== 3 && j !== 4 && j !== 5 && j !== 7) w[i * 9 + j] = 0;
    w13[i * 3] = w[i * 9 + 3]; w13[i * 3 + 1] = w[i * 9 + 4]; w13[i * 3 + 2] = w[i * 9 + 5];
    w21[i * 2] = w[i * 9 + 1]; w21[i * 2 + 1] = w[i * 9 + 7];
  }
  const feeds = { x: new ort.Tensor('float32', rand(N * C0 * H * H, 1), [N, C0, H, H]), w: new ort.Tensor('float32', w, [O, C, 3, 3]), a: new ort.Tensor('float32', w13, [O, C, 1, 3]), b: new ort.Tensor('float32', w21, [O, C, 2, 1]) };
  const group = { name: 'group', type: AT.INT, i: G };
  const dense = model([{ name: 'x', dims: [N, C0, H, H] }, { name: 'w', dims: [O, C, 3, 3] }], 'y', [n('Conv', ['x', 'w'], 'y', [ints('pads', [1, 1, 1, 1]), group])]);
  const pieces = model([{ name: 'x', dims: [N, C0, H, H] }, { name: 'a', dims: [O, C, 1, 3] }, { name: 'b', dims: [O, C, 2, 1] }], 'y', [
    n('Conv', ['x', 'a'], 'ya', [ints('pads', [0, 1, 0, 1]), group]), n('Conv', ['x', 'b'], 'yb', [ints('pads', [1, 0, 1, 0]), ints('dilations', [2, 1]), group]), n('Sum', ['ya', 'yb'], 'y'),
  ]);
  // The second piece adds the first into its own output: onnxruntime's FusedConv (com.microsoft)
  // takes a "sum" input that its GEMM accumulates onto, in place.
  const fused = model([{ name: 'x', dims: [N, C0, H, H] }, { name: 'a', dims: [O, C, 1, 3] }, { name: 'b', dims: [O, C, 2, 1] }], 'y', [
    n('Conv', ['x', 'a'], 'ya', [ints('pads', [0, 1, 0, 1]), group]),
    { ...n('FusedConv', ['x', 'b', '', 'ya'], 'y', [ints('pads', [1, 0, 1, 0]), ints('dilations', [2, 1]), group, ints('kernel_shape', [2, 1])]), domain: 'com.microsoft' },
  ], [], true);
  const arms = [dense, pieces, fused];
  const sessions = await Promise.all(arms.map((b) => ort.InferenceSession.create(b, { intraOpNumThreads: Number(values.threads), interOpNumThreads: 1, graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } } })));
  const outs = await Promise.all(sessions.map(async (s) => (await s.run(feeds)).y.data as Float32Array));
  let d = 0;
  for (let i = 0; i < outs[0].length; i++) d = Math.max(d, Math.abs(outs[0][i] - outs[1][i]), Math.abs(outs[0][i] - outs[2][i]));
  const t = arms.map(() => [] as number[]);
  for (let r = 0; r < Number(values.rounds); r++) for (let k = 0; k < arms.length; k++) for (let i = 0; i < Number(values.reps); i++) { const t0 = performance.now(); await sessions[k].run(feeds); t[k].push(performance.now() - t0); }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
  console.log(`X [${N}, ${C0}, ${H}, ${H}] -> ${O}, group ${G}: dense ${med(t[0]).toFixed(3)} ms, pieces ${med(t[1]).toFixed(3)} ms, pieces/dense x${(med(t[1]) / med(t[0])).toFixed(2)}, pieces with FusedConv sum ${med(t[2]).toFixed(3)} ms, /pieces x${(med(t[2]) / med(t[1])).toFixed(2)} (max |diff| ${d.toExponential(1)}, load ${os.loadavg()[0].toFixed(1)})`);
  for (const s of sessions) await s.release();
}
