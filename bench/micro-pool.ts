/**
 * `node dist/bench/micro-pool.js`: MaxPool forward + backward formulations for kprune's training
 * graph (issue #14), timed in onnxruntime side by side (rounds interleaved, medians): the forward
 * MaxPool with its Indices output and dX scattered by them (ScatterElements, MaxUnpool), against
 * a MaxPool without indices and dX routed by comparing X with the pooled maximum (non-overlapping
 * windows only).
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

function model(inputs: { name: string; dims: number[] }[], outputs: string[], nodes: Node[], inits: onnxProto.onnx.ITensorProto[] = []): Uint8Array {
  const vi = (name: string, dims?: number[]) => ({ name, type: { tensorType: { elemType: 1, shape: dims ? { dim: dims.map((d) => ({ dimValue: d })) } : undefined } } });
  return onnx.ModelProto.encode({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'g', node: nodes, input: inputs.map((i) => vi(i.name, i.dims)), output: outputs.map((o) => vi(o)), initializer: inits },
  }).finish();
}
const f32 = (name: string, v: number[], dims: number[]) => ({ name, dims, dataType: 1, rawData: new Uint8Array(new Float32Array(v).buffer) });
const i64 = (name: string, v: number[]) => ({ name, dims: [v.length], dataType: 7, rawData: new Uint8Array(new BigInt64Array(v.map(BigInt)).buffer) });
const n = (opType: string, input: string[], output: string | string[], attribute: onnxProto.onnx.IAttributeProto[] = []): Node => ({ name: String(output), opType, input, output: Array.isArray(output) ? output : [output], attribute });
const ints = (name: string, v: number[]) => ({ name, type: AT.INTS, ints: v });
const int = (name: string, v: number) => ({ name, type: AT.INT, i: v });

function rand(len: number, seed: number, nonneg = false): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: len }, () => (nonneg ? Math.max(0, r() * 2 - 1) : r() * 2 - 1));
}

interface Case { name: string; bytes: Uint8Array }

async function compare(title: string, cases: Case[], feeds: Record<string, ort.Tensor>): Promise<void> {
  const threads = Number(values.threads);
  const sessions = await Promise.all(cases.map((c) => ort.InferenceSession.create(c.bytes, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } },
  })));
  const times = cases.map(() => [] as number[]);
  const outs: Float32Array[][] = [];
  for (let k = 0; k < cases.length; k++) {
    const r = await sessions[k].run(feeds);
    outs.push(['y', 'dx'].map((o) => r[o].data as Float32Array));
  }
  for (let k = 1; k < cases.length; k++) {
    for (let j = 0; j < 2; j++) {
      let d = 0;
      for (let i = 0; i < outs[0][j].length; i++) d = Math.max(d, Math.abs(outs[0][j][i] - outs[k][j][i]));
      if (d > 1e-6) console.log(`  !! ${cases[k].name}: output ${j} differs (max |diff| ${d})`);
    }
  }
  for (let round = 0; round < Number(values.rounds); round++) {
    for (let k = 0; k < cases.length; k++) {
      for (let i = 0; i < Number(values.reps); i++) {
        const t0 = performance.now();
        await sessions[k].run(feeds);
        times[k].push(performance.now() - t0);
      }
    }
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
  console.log(`${title} (${threads} thread(s), load ${os.loadavg()[0].toFixed(1)}):`);
  for (let k = 0; k < cases.length; k++) console.log(`  ${med(times[k]).toFixed(3).padStart(8)} ms  x${(med(times[k]) / med(times[0])).toFixed(2)}  ${cases[k].name}`);
  for (const s of sessions) await s.release();
}

for (const [N, C, H] of [[64, 16, 28], [64, 32, 14]]) {
  const Ho = H / 2;
  const dims = [N, C, H, H];
  const len = N * C * H * H;
  // Random values (no ties) after a ReLU: zeros tie, as in a real network.
  const feeds = { x: new ort.Tensor('float32', rand(len, 1, true), dims), dy: new ort.Tensor('float32', rand(len / 4, 2), [N, C, Ho, Ho]) };
  const ins = [{ name: 'x', dims }, { name: 'dy', dims: [N, C, Ho, Ho] }];
  const pool = [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])];
  const withIdx = n('MaxPool', ['x'], ['y', 'i'], pool);
  const plain = n('MaxPool', ['x'], 'y', pool);
  const x6 = i64('x6', [N, C, Ho, 2, Ho, 2]);
  const y6 = i64('y6', [N, C, Ho, 1, Ho, 1]);
  const xs = i64('xs', dims);
  await compare(`MaxPool 2x2/2 forward + backward, X [${dims.join(', ')}]`, [
    { name: 'indices + ScatterElements (current)', bytes: model(ins, ['y', 'dx'], [withIdx, n('Reshape', ['i', 'm1'], 'if'), n('Reshape', ['dy', 'm1'], 'dyf'),
      n('ScatterElements', ['zeros', 'if', 'dyf'], 'df', [int('axis', 0)]), n('Reshape', ['df', 'xs'], 'dx')], [f32('zeros', new Array(len).fill(0), [len]), i64('m1', [-1]), xs]) },
    { name: 'indices + MaxUnpool', bytes: model(ins, ['y', 'dx'], [withIdx, n('MaxUnpool', ['dy', 'i', 'xs'], 'dx', pool)], [xs]) },
    { name: 'plain MaxPool; Where(Equal(X, Y), dY, 0) [ties: all]', bytes: model(ins, ['y', 'dx'], [plain, n('Reshape', ['x', 'x6'], 'xr'), n('Reshape', ['y', 'y6'], 'yr'), n('Reshape', ['dy', 'y6'], 'dyr'),
      n('Equal', ['xr', 'yr'], 'eq'), n('Where', ['eq', 'dyr', 'zero'], 'd6'), n('Reshape', ['d6', 'xs'], 'dx')], [x6, y6, xs, f32('zero', [0], [])]) },
    { name: 'plain MaxPool; Cast(Equal) * dY [ties: all]', bytes: model(ins, ['y', 'dx'], [plain, n('Reshape', ['x', 'x6'], 'xr'), n('Reshape', ['y', 'y6'], 'yr'), n('Reshape', ['dy', 'y6'], 'dyr'),
      n('Equal', ['xr', 'yr'], 'eq'), n('Cast', ['eq'], 'ef', [int('to', 1)]), n('Mul', ['ef', 'dyr'], 'd6'), n('Reshape', ['d6', 'xs'], 'dx')], [x6, y6, xs]) },
    { name: 'plain MaxPool; Cast(Equal) * (dY / ties) [ties: shared]', bytes: model(ins, ['y', 'dx'], [plain, n('Reshape', ['x', 'x6'], 'xr'), n('Reshape', ['y', 'y6'], 'yr'), n('Reshape', ['dy', 'y6'], 'dyr'),
      n('Equal', ['xr', 'yr'], 'eq'), n('Cast', ['eq'], 'ef', [int('to', 1)]), n('ReduceSum', ['ef', 'a35'], 't'), n('Div', ['dyr', 't'], 'q'), n('Mul', ['ef', 'q'], 'd6'), n('Reshape', ['d6', 'xs'], 'dx')], [x6, y6, xs, i64('a35', [3, 5])]) },
    { name: 'plain MaxPool; SpaceToDepth, ArgMax (first), Equal(k), Where, DepthToSpace [exact]', bytes: model(ins, ['y', 'dx'], [plain,
      n('SpaceToDepth', ['x'], 's', [int('blocksize', 2)]), n('Reshape', ['s', 's3'], 'sr'), n('ArgMax', ['sr'], 'am', [int('axis', 1), int('keepdims', 1)]),
      n('Equal', ['am', 'k4'], 'm'), n('Reshape', ['dy', 'd3'], 'dyr'), n('Where', ['m', 'dyr', 'zero'], 'ds'), n('Reshape', ['ds', 'sd'], 'dsr'),
      n('DepthToSpace', ['dsr'], 'dx', [int('blocksize', 2)])], [i64('s3', [N, 4, C * Ho * Ho]), i64('d3', [N, 1, C * Ho * Ho]), i64('sd', [N, 4 * C, Ho, Ho]), f32('zero', [0], []),
      { name: 'k4', dims: [1, 4, 1], dataType: 7, rawData: new Uint8Array(new BigInt64Array([0n, 1n, 2n, 3n]).buffer) }]) },
    { name: 'plain MaxPool; SpaceToDepth, Equal(S, Y), CumSum, first, Where, DepthToSpace [exact]', bytes: model(ins, ['y', 'dx'], [plain,
      n('SpaceToDepth', ['x'], 's', [int('blocksize', 2)]), n('Reshape', ['s', 's3'], 'sr'), n('Reshape', ['y', 'd3'], 'yr'), n('Equal', ['sr', 'yr'], 'e'),
      n('Cast', ['e'], 'ef', [int('to', 1)]), n('CumSum', ['ef', 'ax1'], 'c'), n('Mul', ['c', 'ef'], 'ce'), n('Equal', ['ce', 'one'], 'm'),
      n('Reshape', ['dy', 'd3'], 'dyr'), n('Where', ['m', 'dyr', 'zero'], 'ds'), n('Reshape', ['ds', 'sd'], 'dsr'),
      n('DepthToSpace', ['dsr'], 'dx', [int('blocksize', 2)])], [i64('s3', [N, 4, C * Ho * Ho]), i64('d3', [N, 1, C * Ho * Ho]), i64('sd', [N, 4 * C, Ho, Ho]), f32('zero', [0], []), f32('one', [1], []),
      { name: 'ax1', dims: [], dataType: 7, rawData: new Uint8Array(new BigInt64Array([1n]).buffer) }]) },
    { name: 'plain MaxPool; SpaceToDepth, ArgMax, flat indices (Gather + Add), MaxUnpool [exact]', bytes: model(ins, ['y', 'dx'], [plain,
      n('SpaceToDepth', ['x'], 's', [int('blocksize', 2)]), n('Reshape', ['s', 's3'], 'sr'), n('ArgMax', ['sr'], 'am', [int('axis', 1), int('keepdims', 0)]),
      n('Gather', ['offsets', 'am'], 'off'), n('Add', ['off', 'base'], 'idx'), n('Reshape', ['idx', 'y4'], 'i4'),
      n('MaxUnpool', ['dy', 'i4', 'xs'], 'dx', pool)], [i64('s3', [N, 4, C * Ho * Ho]), i64('y4', [N, C, Ho, Ho]), xs, i64('offsets', [0, 1, H, H + 1]),
      { name: 'base', dims: [N, C * Ho * Ho], dataType: 7, rawData: new Uint8Array(BigInt64Array.from({ length: N * C * Ho * Ho }, (_, q) => {
        const nn = Math.floor(q / (C * Ho * Ho)); const r = q % (C * Ho * Ho); const c = Math.floor(r / (Ho * Ho)); const oy = Math.floor((r % (Ho * Ho)) / Ho); const ox = r % Ho;
        return BigInt(((nn * C + c) * H + oy * 2) * H + ox * 2);
      }).buffer) }]) },
    { name: 'plain MaxPool; two-stage ArgMax (row then window), GatherElements, flat indices, MaxUnpool [exact]', bytes: model(ins, ['y', 'dx'], [plain,
      n('Reshape', ['x', 'rows'], 'xr'), n('ArgMax', ['xr'], 'ac', [int('axis', 2), int('keepdims', 1)]), n('ReduceMax', ['xr'], 'rm', [ints('axes', [2]), int('keepdims', 1)]),
      n('Reshape', ['rm', 'wins'], 'rmw'), n('ArgMax', ['rmw'], 'ar', [int('axis', 1), int('keepdims', 1)]),
      n('Reshape', ['ac', 'wins'], 'acw'), n('GatherElements', ['acw', 'ar'], 'col', [int('axis', 1)]),
      n('Mul', ['ar', 'wconst'], 'rowoff'), n('Add', ['rowoff', 'col'], 'off'), n('Reshape', ['off', 'flatw'], 'off2'), n('Add', ['off2', 'base'], 'idx'), n('Reshape', ['idx', 'y4'], 'i4'),
      n('MaxUnpool', ['dy', 'i4', 'xs'], 'dx', pool)], [i64('rows', [N * C * H, Ho, 2]), i64('wins', [N * C * Ho, 2, Ho]), i64('flatw', [N, C * Ho * Ho]), i64('y4', [N, C, Ho, Ho]), xs,
      { name: 'wconst', dims: [], dataType: 7, rawData: new Uint8Array(BigInt64Array.from([BigInt(H)]).buffer) },
      { name: 'base', dims: [N, C * Ho * Ho], dataType: 7, rawData: new Uint8Array(BigInt64Array.from({ length: N * C * Ho * Ho }, (_, q) => {
        const nn = Math.floor(q / (C * Ho * Ho)); const r = q % (C * Ho * Ho); const c = Math.floor(r / (Ho * Ho)); const oy = Math.floor((r % (Ho * Ho)) / Ho); const ox = r % Ho;
        return BigInt(((nn * C + c) * H + oy * 2) * H + ox * 2);
      }).buffer) }]) },
    { name: 'MaxPool with indices only (no backward)', bytes: model(ins, ['y', 'dx'], [withIdx, n('Identity', ['x'], 'dx')]) },
    { name: 'plain MaxPool only (forward floor)', bytes: model(ins, ['y', 'dx'], [plain, n('Identity', ['x'], 'dx')]) },
  ], feeds);
}
