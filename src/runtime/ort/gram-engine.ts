/**
 * The heavy float64 algebra of layer-wise reconstruction in onnxruntime: the products of the
 * statistics (G = At At^T, B = At Yt^T; Gemm), the solve with every output channel as a
 * right-hand side (com.microsoft Inverse, then MatMul) and G W for the errors (MatMul). About 60x
 * faster than plain JavaScript for the products, and the solve of a 2,560-unknown layer takes
 * seconds instead of a minute; float64 throughout. Without the contrib Inverse (a build without
 * contrib ops), solves stay in JavaScript (Cholesky).
 */
import { ortApi } from './ort.js';
import onnxProto from 'onnx-proto';
import type { GramEngine } from '../../core/recover/layer-stats.js';

const { onnx } = onnxProto;
const DOUBLE = 11;

const vi = (name: string, dims: string[]) => ({ name, type: { tensorType: { elemType: DOUBLE, shape: { dim: dims.map((d) => ({ dimParam: d })) } } } });

function model(name: string, node: onnxProto.onnx.INodeProto[], input: string[][], output: string[][], contrib = false): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }, ...(contrib ? [{ domain: 'com.microsoft', version: 1 }] : [])],
    graph: { name, node, input: input.map(([n, ...d]) => vi(n, d)), output: output.map(([n, ...d]) => vi(n, d)) },
  }).finish();
}

function gramModel(): Uint8Array {
  const transB = [{ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 }];
  return model('kprune_gram', [
    { name: 'gram', opType: 'Gemm', input: ['at', 'at'], output: ['g'], attribute: transB },
    { name: 'cross', opType: 'Gemm', input: ['at', 'yt'], output: ['b'], attribute: transB },
  ], [['at', 'n', 'r'], ['yt', 'o', 'r']], [['g', 'n', 'n'], ['b', 'n', 'o']]);
}

function solveModel(): Uint8Array {
  return model('kprune_solve', [
    { name: 'inverse', opType: 'Inverse', domain: 'com.microsoft', input: ['a'], output: ['ai'] },
    { name: 'product', opType: 'MatMul', input: ['ai', 'b'], output: ['x'] },
  ], [['a', 'n', 'n'], ['b', 'n', 'o']], [['x', 'n', 'o']], true);
}

function multiplyModel(): Uint8Array {
  return model('kprune_multiply', [{ name: 'product', opType: 'MatMul', input: ['a', 'b'], output: ['c'] }], [['a', 'n', 'm'], ['b', 'm', 'o']], [['c', 'n', 'o']]);
}

const OPTIONS = { intraOpNumThreads: 0, logSeverityLevel: 4 } as const;

export async function createOrtGramEngine(): Promise<GramEngine & { release(): Promise<void> }> {
  const gram = await ortApi().InferenceSession.create(gramModel(), OPTIONS);
  const multiply = await ortApi().InferenceSession.create(multiplyModel(), OPTIONS);
  const solve = await ortApi().InferenceSession.create(solveModel(), OPTIONS).catch(() => null);
  const t = (data: Float64Array, dims: number[]) => new (ortApi().Tensor)('float64', data, dims);
  return {
    async product(at, yt, n, o, r) {
      const out = await gram.run({ at: t(at, [n, r]), yt: t(yt, [o, r]) });
      return { gram: out.g.data as Float64Array, cross: out.b.data as Float64Array };
    },
    ...(solve ? {
      async solve(a: Float64Array, b: Float64Array, n: number, o: number) {
        return (await solve.run({ a: t(a, [n, n]), b: t(b, [n, o]) })).x.data as Float64Array;
      },
    } : {}),
    async multiply(a, b, n, m, o) {
      return (await multiply.run({ a: t(a, [n, m]), b: t(b, [m, o]) })).c.data as Float64Array;
    },
    async release() {
      await gram.release();
      await multiply.release();
      await solve?.release();
    },
  };
}
