/**
 * One-operator ONNX graphs and a finite-difference check of their backward rules: the training
 * graph kprune builds (loss sum(Y * R) for a fixed random R, so dL/dY = R) is run in onnxruntime
 * and its gradients compared, element by element, with central differences of the forward graph
 * run in onnxruntime too (float32; the loss summed in float64).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { readOnnxModel } from '../../src/formats/onnx/read.js';
import { buildTrainingGraph } from '../../src/formats/onnx/training/index.js';
import type { ValueShape } from '../../src/formats/onnx/training/index.js';
import { mulberry32 } from '../../src/util/random.js';
import { Mask, maskHas } from '../../src/core/lattice.js';
import { packKept, unpackKept } from '../../src/core/finetune/kept-layout.js';
import { floatTensor, valueInfo } from './onnx-builder.js';
import { tempDir } from './tmp.js';

const { onnx } = onnxProto;
const AT = onnx.AttributeProto.AttributeType;

export const a = {
  int: (name: string, i: number) => ({ name, type: AT.INT, i }),
  ints: (name: string, ints: number[]) => ({ name, type: AT.INTS, ints }),
  float: (name: string, f: number) => ({ name, type: AT.FLOAT, f }),
  str: (name: string, s: string) => ({ name, type: AT.STRING, s: Buffer.from(s) }),
};

export function int64Tensor(name: string, values: number[], dims = [values.length]): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: 7, rawData: new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer) };
}

/** Values in [-1, 1]; `away` keeps them at least 0.05 from zero (off the kinks of Relu & co.). */
export function values(n: number, seed: number, kind: 'any' | 'away' | 'distinct' = 'any'): Float32Array {
  const r = mulberry32(seed);
  if (kind === 'distinct') {
    // A shuffled ladder 0.05 apart: no ties, no near-ties within a pooling window.
    const v = Float32Array.from({ length: n }, (_, i) => (i - n / 2) * 0.05);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [v[i], v[j]] = [v[j], v[i]];
    }
    return v;
  }
  return Float32Array.from({ length: n }, () => {
    const x = r() * 2 - 1;
    return kind === 'away' ? Math.sign(x || 1) * (0.05 + Math.abs(x)) : x;
  });
}

export interface Operand {
  name: string;
  dims: number[];
  values: Float32Array;
  /** Differentiated (a graph input of the test graph); otherwise a frozen float initializer. */
  trainable?: boolean;
}

export interface OpCase {
  op: string;
  opset: number;
  /** Float operands in input order ('' entries in `inputOrder` leave optional inputs out). */
  operands: Operand[];
  /** Constant non-float inputs (shapes, axes, pads...). */
  consts?: onnxProto.onnx.ITensorProto[];
  /** The node's inputs in order, by name (default: operands then consts). */
  inputOrder?: string[];
  attrs?: onnxProto.onnx.IAttributeProto[];
  outputs?: string[];
  /** The output the loss reads (default the first). */
  head?: string;
}

function modelBytes(c: OpCase): Uint8Array {
  const outputs = c.outputs ?? ['y'];
  const order = c.inputOrder ?? [...c.operands.map((o) => o.name), ...(c.consts ?? []).map((t) => t.name!)];
  const graph: onnxProto.onnx.IGraphProto = {
    name: c.op,
    node: [{ name: 'n', opType: c.op, input: order, output: outputs, attribute: c.attrs ?? [] }],
    input: c.operands.filter((o) => o.trainable).map((o) => valueInfo(o.name, o.dims)),
    initializer: [...c.operands.filter((o) => !o.trainable).map((o) => floatTensor(o.name, o.dims, o.values)), ...(c.consts ?? [])],
    output: [{ name: c.head ?? outputs[0] }],
  };
  return onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: c.opset }], graph }).finish();
}

// Made when the helper is imported (at the top level of a test file), removed when the file ends.
const dir = tempDir('kprune-ort-training-');
let count = 0;

async function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
}

/**
 * The training graph's gradients of the one-operator graph `c` under the loss sum(y * r), r seeded
 * values; with the forward session (released by the caller) and its feeds for finite differences.
 */
export async function gradientsOf(c: OpCase, masks?: Map<string, Mask>, layout: 'full' | 'kept' = 'full') {
  const bytes = modelBytes(c);
  const file = path.join(dir, `case-${count++}.onnx`);
  writeFileSync(file, bytes);
  const model = await readOnnxModel(file);
  const head = c.head ?? (c.outputs ?? ['y'])[0];
  const trainable = c.operands.filter((x) => x.trainable);
  const forward = await session(bytes);
  const feeds = (vals: Map<string, Float32Array>) => Object.fromEntries(trainable.map((t) => [t.name, new ort.Tensor('float32', vals.get(t.name)!, t.dims)]));
  const base = new Map(trainable.map((t) => [t.name, t.values]));
  const y0 = (await forward.run(feeds(base)))[head] as ort.Tensor;
  const shapes = new Map<string, ValueShape>([[head, { dims: [...y0.dims], type: y0.type }]]);
  for (const t of trainable) shapes.set(t.name, { dims: t.dims, type: 'float32' });
  // Every output of the node (a Split's unused ones too), from a run that fetches them all.
  const all = onnx.ModelProto.decode(bytes);
  all.graph!.output = (c.outputs ?? ['y']).map((name) => ({ name }));
  const full = await session(onnx.ModelProto.encode(all).finish());
  for (const [name, v] of Object.entries(await full.run(feeds(base)))) shapes.set(name, { dims: [...(v as ort.Tensor).dims], type: (v as ort.Tensor).type });
  await full.release();

  const built = buildTrainingGraph(model, { trainable: trainable.map((t) => t.name), head, shapes, loss: { objective: 'dot' }, masks, layout });
  assert.ok(built.ok, `${c.op}: ${built.ok ? '' : JSON.stringify(built.missing)}`);
  const g = built.graph;
  const r = values(y0.data.length, 777);
  const train = await session(g.bytes);
  const tf = feeds(base);
  // A weight in the kept layout is fed as its kept positions, and its gradient unpacked to compare.
  for (const w of g.weights) if (w.positions) tf[w.name] = new ort.Tensor('float32', packKept(base.get(w.name)!, w.positions), w.dims);
  tf[g.lossInputs.dhead!] = new ort.Tensor('float32', r, g.flatDims);
  const out = await train.run(tf);
  await train.release();
  const grads = trainable.map((_, k) => {
    const w = g.weights[k];
    const data = out[w.grad].data as Float32Array;
    return w.positions ? unpackKept(data, w.positions) : data;
  });
  return { forward, feeds, base, head, r, grads, graph: g };
}

/**
 * Checks the gradient of every trainable operand against central differences (at most `maxElements`
 * of each, spread evenly). Returns the worst error relative to the gradient's scale.
 */
export async function checkRule(c: OpCase, o: { h?: number; tol?: number; maxElements?: number; masks?: Map<string, Mask>; layout?: 'full' | 'kept' } = {}): Promise<number> {
  const h = o.h ?? 1e-2;
  const tol = o.tol ?? 2e-3;
  const { forward, feeds, base, head, r, grads, graph } = await gradientsOf(c, o.masks, o.layout);
  if (o.layout === 'kept') {
    // Every masked weight of a one-operator graph is read by its one Conv: all in the kept layout.
    for (const w of graph.weights) if (o.masks?.has(w.name)) assert.ok(w.positions, `${c.op}: ${w.name} fed in the kept layout`);
  }
  const trainable = c.operands.filter((x) => x.trainable);
  let worst = 0;
  for (const [k, t] of trainable.entries()) {
    const grad = grads[k];
    assert.equal(grad.length, t.values.length, `${c.op}: gradient of ${t.name} has the operand's size`);
    let scale = 1e-3;
    for (const v of grad) scale = Math.max(scale, Math.abs(v));
    const n = t.values.length;
    const stride = Math.max(1, Math.floor(n / (o.maxElements ?? 400)));
    const mask = o.masks?.get(t.name);
    for (let i = 0; i < n; i += stride) {
      if (mask !== undefined && !maskHas(mask, i % 9)) {
        // A masked weight's dropped positions are not computed: their gradient is exactly zero.
        assert.equal(grad[i], 0, `${c.op}: d/d${t.name}[${i}] at a dropped position`);
        continue;
      }
      const plus = new Float32Array(t.values);
      const minus = new Float32Array(t.values);
      plus[i] += h;
      minus[i] -= h;
      const yp = (await forward.run(feeds(new Map([...base, [t.name, plus]]))))[head].data as Float32Array;
      const ym = (await forward.run(feeds(new Map([...base, [t.name, minus]]))))[head].data as Float32Array;
      let diff = 0;
      for (let j = 0; j < yp.length; j++) diff += (yp[j] - ym[j]) * r[j];
      const fd = diff / (2 * h);
      const err = Math.abs(fd - grad[i]) / scale;
      worst = Math.max(worst, err);
      assert.ok(err <= tol, `${c.op}: d/d${t.name}[${i}] = ${grad[i]}, finite differences ${fd} (error ${err.toExponential(2)} of scale ${scale.toPrecision(3)})`);
    }
  }
  await forward.release();
  return worst;
}
