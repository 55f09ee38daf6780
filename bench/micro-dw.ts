/**
 * `node dist/bench/micro-dw.js`: one tap of the depthwise filter gradient (issue #14), dW[c] = sum
 * over batch and positions of V * dY with V the tap's view of the input: the product and the
 * reduction written several ways, timed side by side in onnxruntime (rounds interleaved, medians).
 */
import { parseArgs } from 'node:util';
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { mulberry32 } from '../src/util/random.js';

const { onnx } = onnxProto;
const AT = onnx.AttributeProto.AttributeType;
type Node = onnxProto.onnx.INodeProto;
const { values } = parseArgs({ options: { threads: { type: 'string', default: '1' }, rounds: { type: 'string', default: '6' }, reps: { type: 'string', default: '20' } } });

function model(inputs: { name: string; dims: number[] }[], output: string, nodes: Node[], inits: onnxProto.onnx.ITensorProto[] = []): Uint8Array {
  const vi = (name: string, dims?: number[]) => ({ name, type: { tensorType: { elemType: 1, shape: dims ? { dim: dims.map((d) => ({ dimValue: d })) } : undefined } } });
  return onnx.ModelProto.encode({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'g', node: nodes, input: inputs.map((i) => vi(i.name, i.dims)), output: [vi(output)], initializer: inits },
  }).finish();
}
const i64 = (name: string, v: number[]) => ({ name, dims: [v.length], dataType: 7, rawData: new Uint8Array(new BigInt64Array(v.map(BigInt)).buffer) });
const n = (opType: string, input: string[], output: string, attribute: onnxProto.onnx.IAttributeProto[] = []): Node => ({ name: output, opType, input, output: [output], attribute });
const keep0 = { name: 'keepdims', type: AT.INT, i: 0 };
const rand = (len: number, seed: number) => { const r = mulberry32(seed); return Float32Array.from({ length: len }, () => r() * 2 - 1); };

for (const [N, C, H] of [[64, 32, 28], [64, 64, 14], [64, 128, 7]]) {
  const P = H * H;
  const feeds = { v: new ort.Tensor('float32', rand(N * C * P, 1), [N, C, P]), dy: new ort.Tensor('float32', rand(N * C * P, 2), [N, C, P]) };
  const ins = [{ name: 'v', dims: [N, C, P] }, { name: 'dy', dims: [N, C, P] }];
  const cases = [
    { name: 'Mul, ReduceSum over [0, 2] (current)', bytes: model(ins, 'dw', [n('Mul', ['v', 'dy'], 'm'), n('ReduceSum', ['m', 'a02'], 'dw', [keep0])], [i64('a02', [0, 2])]) },
    { name: 'Mul, ReduceSum over 2, ReduceSum over 0', bytes: model(ins, 'dw', [n('Mul', ['v', 'dy'], 'm'), n('ReduceSum', ['m', 'a2'], 'r', [keep0]), n('ReduceSum', ['r', 'a0'], 'dw', [keep0])], [i64('a2', [2]), i64('a0', [0])]) },
    { name: 'batched MatMul [N*C, 1, P] x [N*C, P, 1], ReduceSum over 0', bytes: model(ins, 'dw', [n('Reshape', ['v', 's1'], 'vr'), n('Reshape', ['dy', 's2'], 'dyr'), n('MatMul', ['vr', 'dyr'], 'mm'), n('Reshape', ['mm', 'nc'], 'r'), n('ReduceSum', ['r', 'a0'], 'dw', [keep0])], [i64('s1', [N * C, 1, P]), i64('s2', [N * C, P, 1]), i64('nc', [N, C]), i64('a0', [0])]) },
    { name: 'Einsum ncp,ncp->c', bytes: model(ins, 'dw', [n('Einsum', ['v', 'dy'], 'dw', [{ name: 'equation', type: AT.STRING, s: Buffer.from('ncp,ncp->c') }])]) },
  ];
  const sessions = await Promise.all(cases.map((c) => ort.InferenceSession.create(c.bytes, { intraOpNumThreads: Number(values.threads), interOpNumThreads: 1, graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } } })));
  const outs = await Promise.all(sessions.map(async (s) => (await s.run(feeds)).dw.data as Float32Array));
  const t = cases.map(() => [] as number[]);
  for (let r = 0; r < Number(values.rounds); r++) for (let k = 0; k < cases.length; k++) for (let i = 0; i < Number(values.reps); i++) { const t0 = performance.now(); await sessions[k].run(feeds); t[k].push(performance.now() - t0); }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
  console.log(`depthwise dW tap, [${N}, ${C}, ${P}] (load ${os.loadavg()[0].toFixed(1)}):`);
  cases.forEach((c, k) => {
    let d = 0;
    for (let i = 0; i < outs[0].length; i++) d = Math.max(d, Math.abs(outs[0][i] - outs[k][i]) / (1 + Math.abs(outs[0][i])));
    console.log(`  ${med(t[k]).toFixed(3).padStart(8)} ms  x${(med(t[k]) / med(t[0])).toFixed(2)}  ${c.name} (max rel diff ${d.toExponential(1)})`);
  });
  for (const s of sessions) await s.release();
}
