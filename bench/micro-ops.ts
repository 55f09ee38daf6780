/**
 * `node dist/bench/micro-ops.js`: single-operator alternatives for pieces of kprune's training graph
 * (issue #14), timed in onnxruntime side by side (rounds interleaved, medians): the ReLU backward
 * (Where(Y > 0, dY, 0) against dY * Sign(Y) and others) and the depthwise filter gradient.
 */
import { parseArgs } from 'node:util';
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { mulberry32 } from '../src/util/random.js';

const { onnx } = onnxProto;
const AT = onnx.AttributeProto.AttributeType;
type Node = onnxProto.onnx.INodeProto;
const { values } = parseArgs({ options: { threads: { type: 'string', default: '1' }, rounds: { type: 'string', default: '5' }, reps: { type: 'string', default: '20' } } });

function model(inputs: { name: string; dims: number[] }[], output: string, nodes: Node[], inits: onnxProto.onnx.ITensorProto[] = []): Uint8Array {
  const vi = (name: string, dims?: number[]) => ({ name, type: { tensorType: { elemType: 1, shape: dims ? { dim: dims.map((d) => ({ dimValue: d })) } : undefined } } });
  return onnx.ModelProto.encode({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'g', node: nodes, input: inputs.map((i) => vi(i.name, i.dims)), output: [vi(output)], initializer: inits },
  }).finish();
}
const f32 = (name: string, v: number[], dims: number[]) => ({ name, dims, dataType: 1, rawData: new Uint8Array(new Float32Array(v).buffer) });
const i64 = (name: string, v: number[]) => ({ name, dims: [v.length], dataType: 7, rawData: new Uint8Array(new BigInt64Array(v.map(BigInt)).buffer) });
const n = (opType: string, input: string[], output: string, attribute: onnxProto.onnx.IAttributeProto[] = []): Node => ({ name: output, opType, input, output: [output], attribute });

function rand(len: number, seed: number, nonneg = false): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: len }, () => (nonneg ? Math.max(0, r() * 2 - 1) : r() * 2 - 1));
}

interface Case { name: string; bytes: Uint8Array; feeds: Record<string, ort.Tensor> }

async function compare(title: string, cases: Case[]): Promise<void> {
  const threads = Number(values.threads);
  const sessions = await Promise.all(cases.map((c) => ort.InferenceSession.create(c.bytes, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } },
  })));
  const times = cases.map(() => [] as number[]);
  const outs: Float32Array[] = [];
  for (let k = 0; k < cases.length; k++) outs.push((Object.values(await sessions[k].run(cases[k].feeds))[0] as ort.Tensor).data as Float32Array);
  for (let k = 1; k < cases.length; k++) {
    let d = 0;
    for (let i = 0; i < outs[0].length; i++) d = Math.max(d, Math.abs(outs[0][i] - outs[k][i]));
    if (outs[k].length !== outs[0].length || d > 1e-3) console.log(`  !! ${cases[k].name} differs from ${cases[0].name} (max |diff| ${d}, lengths ${outs[k].length} ${outs[0].length})`);
  }
  for (let round = 0; round < Number(values.rounds); round++) {
    for (let k = 0; k < cases.length; k++) {
      for (let i = 0; i < Number(values.reps); i++) {
        const t0 = performance.now();
        await sessions[k].run(cases[k].feeds);
        times[k].push(performance.now() - t0);
      }
    }
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
  console.log(`${title} (${threads} thread(s), load ${os.loadavg()[0].toFixed(1)}):`);
  for (let k = 0; k < cases.length; k++) console.log(`  ${med(times[k]).toFixed(3).padStart(8)} ms  x${(med(times[k]) / med(times[0])).toFixed(2)}  ${cases[k].name}`);
  for (const s of sessions) await s.release();
}

// ReLU backward.
for (const dims of [[64, 32, 28, 28], [64, 64, 14, 14]]) {
  const len = dims.reduce((a, b) => a * b, 1);
  const feeds = { y: new ort.Tensor('float32', rand(len, 1, true), dims), dy: new ort.Tensor('float32', rand(len, 2), dims) };
  const ins = [{ name: 'y', dims }, { name: 'dy', dims }];
  const zero = f32('zero', [0], []);
  await compare(`ReLU backward [${dims.join(', ')}]`, [
    { name: 'Where(Greater(Y, 0), dY, 0)', feeds, bytes: model(ins, 'dx', [n('Greater', ['y', 'zero'], 'c'), n('Where', ['c', 'dy', 'zero'], 'dx')], [zero]) },
    { name: 'dY * Sign(Y)', feeds, bytes: model(ins, 'dx', [n('Sign', ['y'], 's'), n('Mul', ['dy', 's'], 'dx')]) },
    { name: 'dY * Cast(Greater(Y, 0))', feeds, bytes: model(ins, 'dx', [n('Greater', ['y', 'zero'], 'c'), n('Cast', ['c'], 's', [{ name: 'to', type: AT.INT, i: 1 }]), n('Mul', ['dy', 's'], 'dx')], [zero]) },
    { name: 'Where(Y, ...) via Not(Equal)', feeds, bytes: model(ins, 'dx', [n('Equal', ['y', 'zero'], 'c'), n('Where', ['c', 'zero', 'dy'], 'dx')], [zero]) },
    { name: 'Sum of two (accumulate reference)', feeds, bytes: model(ins, 'dx', [n('Sum', ['y', 'dy'], 'dx')]) },
    { name: 'Add of two', feeds, bytes: model(ins, 'dx', [n('Add', ['y', 'dy'], 'dx')]) },
  ]);
}

// Depthwise filter gradient, cross (5 taps), X [N, C, H, W], dY [N, C, H, W], pads 1.
for (const [N, C, H] of [[64, 32, 28], [64, 64, 14]]) {
  const x = rand(N * C * H * H, 3);
  const dy = rand(N * C * H * H, 4);
  const feeds = { x: new ort.Tensor('float32', x, [N, C, H, H]), dy: new ort.Tensor('float32', dy, [N, C, H, H]) };
  const ins = [{ name: 'x', dims: [N, C, H, H] }, { name: 'dy', dims: [N, C, H, H] }];
  const taps = [[0, 1], [1, 0], [1, 1], [1, 2], [2, 1]];
  const P = H * H;
  const inits = [i64('pads', [0, 0, 1, 1, 0, 0, 1, 1]), i64('axes', [2, 3]), i64('flat', [N, C, P]), i64('r02', [0, 2]), i64('c1', [1, C])];
  const perTap: Node[] = [n('Pad', ['x', 'pads'], 'xp', [{ name: 'mode', type: AT.STRING, s: Buffer.from('constant') }]), n('Reshape', ['dy', 'flat'], 'dyf')];
  const outs: string[] = [];
  taps.forEach(([ky, kx], t) => {
    inits.push(i64(`s${t}`, [ky, kx]), i64(`e${t}`, [ky + H, kx + H]));
    perTap.push(n('Slice', ['xp', `s${t}`, `e${t}`, 'axes'], `v${t}`), n('Reshape', [`v${t}`, 'flat'], `vf${t}`), n('Mul', [`vf${t}`, 'dyf'], `m${t}`),
      n('ReduceSum', [`m${t}`, 'r02'], `r${t}`, [{ name: 'keepdims', type: AT.INT, i: 0 }]), n('Reshape', [`r${t}`, 'c1'], `o${t}`));
    outs.push(`o${t}`);
  });
  perTap.push(n('Concat', outs, 'dw', [{ name: 'axis', type: AT.INT, i: 0 }]));
  // Slices stacked, then one product and one reduction.
  const stacked: Node[] = [n('Pad', ['x', 'pads'], 'xp', [{ name: 'mode', type: AT.STRING, s: Buffer.from('constant') }]), n('Reshape', ['dy', 'flat'], 'dyf')];
  const inits2 = [i64('pads', [0, 0, 1, 1, 0, 0, 1, 1]), i64('axes', [2, 3]), i64('flat1', [1, N, C, P]), i64('flat', [N, C, P]), i64('r13', [1, 3]), i64('five', [5, C])];
  const views: string[] = [];
  taps.forEach(([ky, kx], t) => {
    inits2.push(i64(`s${t}`, [ky, kx]), i64(`e${t}`, [ky + H, kx + H]));
    stacked.push(n('Slice', ['xp', `s${t}`, `e${t}`, 'axes'], `v${t}`), n('Reshape', [`v${t}`, 'flat1'], `vf${t}`));
    views.push(`vf${t}`);
  });
  stacked.push(n('Concat', views, 'all', [{ name: 'axis', type: AT.INT, i: 0 }]), n('Mul', ['all', 'dyf'], 'm'),
    n('ReduceSum', ['m', 'r13'], 'dw', [{ name: 'keepdims', type: AT.INT, i: 0 }]));
  // Grouped convolution: X as [1, C*N, H, W] (channels first), dY as C filters [C, N, H, W], group C.
  const grouped: Node[] = [
    n('Transpose', ['x', ], 'xt', [{ name: 'perm', type: AT.INTS, ints: [1, 0, 2, 3] }]), n('Reshape', ['xt', 'xs'], 'xr'),
    n('Transpose', ['dy'], 'dyt', [{ name: 'perm', type: AT.INTS, ints: [1, 0, 2, 3] }]),
    n('Conv', ['xr', 'dyt'], 'full', [{ name: 'group', type: AT.INT, i: C }, { name: 'pads', type: AT.INTS, ints: [1, 1, 1, 1] }]),
    n('Reshape', ['full', 'c9'], 'f9'), n('Gather', ['f9', 'idx'], 'g', [{ name: 'axis', type: AT.INT, i: 1 }]), n('Transpose', ['g'], 'dw', [{ name: 'perm', type: AT.INTS, ints: [1, 0] }]),
  ];
  // Einsum over the stacked views.
  await compare(`depthwise dW, cross, X [${N}, ${C}, ${H}, ${H}]`, [
    { name: 'per tap Slice, Mul, ReduceSum (current)', feeds, bytes: model(ins, 'dw', perTap, inits) },
    { name: 'Slices stacked, one Mul, one ReduceSum', feeds, bytes: model(ins, 'dw', stacked, inits2) },
    { name: 'grouped Conv, dY as filters (all 9 taps, Gather 5)', feeds, bytes: model(ins, 'dw', grouped, [i64('xs', [1, C * N, H, H]), i64('c9', [C, 9]), i64('idx', [1, 3, 4, 5, 7])]) },
  ]);
}

// Dense filter gradient, one piece of a cross (5 taps), X [N, C, H, W], dY [N, O, H, W], pads 1:
// per tap a batched MatMul over the batch then ReduceSum (current), against one MatMul per tap
// with the batch folded into the reduction (X and dY transposed once per layer).
for (const [N, C, O, H] of [[64, 16, 16, 28], [64, 32, 32, 14], [64, 64, 64, 7]]) {
  const x = rand(N * C * H * H, 5);
  const dy = rand(N * O * H * H, 6);
  const feeds = { x: new ort.Tensor('float32', x, [N, C, H, H]), dy: new ort.Tensor('float32', dy, [N, O, H, H]) };
  const ins = [{ name: 'x', dims: [N, C, H, H] }, { name: 'dy', dims: [N, O, H, H] }];
  const taps = [[0, 1], [1, 0], [1, 1], [1, 2], [2, 1]];
  const P = H * H;
  const pad = n('Pad', ['x', 'pads'], 'xp', [{ name: 'mode', type: AT.STRING, s: Buffer.from('constant') }]);
  const common = [i64('pads', [0, 0, 1, 1, 0, 0, 1, 1]), i64('axes', [2, 3])];
  const cur: Node[] = [pad, n('Reshape', ['dy', 'dy4'], 'dyr'), n('Transpose', ['dyr'], 'dyt', [{ name: 'perm', type: AT.INTS, ints: [0, 1, 3, 2] }])];
  const inits = [...common, i64('dy4', [N, 1, O, P]), i64('x4', [N, 1, C, P]), i64('zero', [0]), i64('co', [1, C, O])];
  const outs: string[] = [];
  taps.forEach(([ky, kx], t) => {
    inits.push(i64(`s${t}`, [ky, kx]), i64(`e${t}`, [ky + H, kx + H]));
    cur.push(n('Slice', ['xp', `s${t}`, `e${t}`, 'axes'], `v${t}`), n('Reshape', [`v${t}`, 'x4'], `vr${t}`), n('MatMul', [`vr${t}`, 'dyt'], `m${t}`),
      n('ReduceSum', [`m${t}`, 'zero'], `r${t}`, [{ name: 'keepdims', type: AT.INT, i: 0 }]), n('Reshape', [`r${t}`, 'co'], `o${t}`));
    outs.push(`o${t}`);
  });
  cur.push(n('Concat', outs, 'dw', [{ name: 'axis', type: AT.INT, i: 0 }]));
  const fold: Node[] = [pad, n('Transpose', ['xp'], 'xt', [{ name: 'perm', type: AT.INTS, ints: [1, 0, 2, 3] }]),
    n('Transpose', ['dy'], 'dyt', [{ name: 'perm', type: AT.INTS, ints: [0, 2, 3, 1] }]), n('Reshape', ['dyt', 'dy2'], 'dyf')];
  const inits2 = [...common, i64('dy2', [N * P, O]), i64('x2', [C, N * P]), i64('co', [1, C, O])];
  const outs2: string[] = [];
  taps.forEach(([ky, kx], t) => {
    inits2.push(i64(`s${t}`, [ky, kx]), i64(`e${t}`, [ky + H, kx + H]));
    fold.push(n('Slice', ['xt', `s${t}`, `e${t}`, 'axes'], `v${t}`), n('Reshape', [`v${t}`, 'x2'], `vr${t}`), n('MatMul', [`vr${t}`, 'dyf'], `m${t}`), n('Reshape', [`m${t}`, 'co'], `o${t}`));
    outs2.push(`o${t}`);
  });
  fold.push(n('Concat', outs2, 'dw', [{ name: 'axis', type: AT.INT, i: 0 }]));
  // Gemm with dY as [O, N*P] (transB): dY transposed once to [O, N, P].
  const gemm: Node[] = [pad, n('Transpose', ['xp'], 'xt', [{ name: 'perm', type: AT.INTS, ints: [1, 0, 2, 3] }]),
    n('Transpose', ['dy'], 'dyt', [{ name: 'perm', type: AT.INTS, ints: [1, 0, 2, 3] }]), n('Reshape', ['dyt', 'dy2'], 'dyf')];
  const inits3 = [...common, i64('dy2', [O, N * P]), i64('x2', [C, N * P]), i64('co', [1, C, O])];
  const outs3: string[] = [];
  taps.forEach(([ky, kx], t) => {
    inits3.push(i64(`s${t}`, [ky, kx]), i64(`e${t}`, [ky + H, kx + H]));
    gemm.push(n('Slice', ['xt', `s${t}`, `e${t}`, 'axes'], `v${t}`), n('Reshape', [`v${t}`, 'x2'], `vr${t}`), n('Gemm', [`vr${t}`, 'dyf'], `m${t}`, [{ name: 'transB', type: AT.INT, i: 1 }]), n('Reshape', [`m${t}`, 'co'], `o${t}`));
    outs3.push(`o${t}`);
  });
  gemm.push(n('Concat', outs3, 'dw', [{ name: 'axis', type: AT.INT, i: 0 }]));
  await compare(`dense dW, cross, X [${N}, ${C}, ${H}, ${H}] -> ${O}`, [
    { name: 'per tap batched MatMul + ReduceSum over N (current)', feeds, bytes: model(ins, 'dw', cur, inits) },
    { name: 'per tap one MatMul, batch folded (X, dY transposed once)', feeds, bytes: model(ins, 'dw', fold, inits2) },
    { name: 'per tap one Gemm transB, batch folded', feeds, bytes: model(ins, 'dw', gemm, inits3) },
  ]);
}

// Zero padding by 1 of X [N, C, H, W]: Pad against Concat with zero slabs and a depthwise 1x1
// Conv of ones with pads 1.
for (const [N, C, H] of [[64, 16, 28], [64, 64, 14]]) {
  const x = rand(N * C * H * H, 7);
  const feeds = { x: new ort.Tensor('float32', x, [N, C, H, H]) };
  const ins = [{ name: 'x', dims: [N, C, H, H] }];
  await compare(`zero pad 1, X [${N}, ${C}, ${H}, ${H}]`, [
    { name: 'Pad', feeds, bytes: model(ins, 'y', [n('Pad', ['x', 'pads'], 'y', [{ name: 'mode', type: AT.STRING, s: Buffer.from('constant') }])], [i64('pads', [0, 0, 1, 1, 0, 0, 1, 1])]) },
    { name: 'Concat with zero slabs (W then H)', feeds, bytes: model(ins, 'y', [
      n('Concat', ['zc', 'x', 'zc'], 'xw', [{ name: 'axis', type: AT.INT, i: 3 }]), n('Concat', ['zr', 'xw', 'zr'], 'y', [{ name: 'axis', type: AT.INT, i: 2 }]),
    ], [f32('zc', new Array(N * C * H).fill(0), [N, C, H, 1]), f32('zr', new Array(N * C * (H + 2)).fill(0), [N, C, 1, H + 2])]) },
    { name: 'depthwise 1x1 Conv of ones, pads 1', feeds, bytes: model(ins, 'y', [
      n('Conv', ['x', 'ones'], 'y', [{ name: 'group', type: AT.INT, i: C }, { name: 'pads', type: AT.INTS, ints: [1, 1, 1, 1] }]),
    ], [f32('ones', new Array(C).fill(1), [C, 1, 1, 1])]) },
  ]);
}
