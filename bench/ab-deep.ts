/**
 * `node dist/bench/ab-deep.js --file r18-56.onnx --input 3,56,56 [--base dist-base] [--profile]`:
 * bench/ab-step.ts for any ONNX file (train-deep's ResNet-18: `python3 bench/torch_deep.py --size 56
 * --export r18-56.onnx`): the training step (cross masks on every 3x3 convolution, cross-entropy,
 * batch 16, one thread; `--layout full|kept`, default kept, as fine-tuning feeds them, and
 * `--baseLayout` for the base's graph when it differs; `--inner W`
 * the widest output with the batch innermost, rules.ts BATCH_INNER) built by this tree's graph builder against the one of another build
 * (`--base`: a copy of dist/ made from the code before a change), one session each in one process,
 * rounds interleaved, wall and process CPU per step, medians; the two graphs' losses and gradients
 * compared first. `--profile`: also onnxruntime's profile of each (kernel time summed by operator,
 * the slowest nodes with their input shapes).
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { kernelCount } from '../src/model/conv.js';
import { parseMask } from '../src/core/lattice.js';
import { maskWeights } from '../src/core/reshape.js';
import { packKept } from '../src/core/finetune/kept-layout.js';
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { probeModelBytes } from '../src/models/onnx/probe.js';
import { readOnnxModel } from '../src/formats/onnx/read.js';
import * as current from '../src/formats/onnx/training/index.js';
import { BATCH_INNER } from '../src/formats/onnx/training/rules.js';
import { probeShapes } from '../src/runtime/ort/training-session.js';
import { mulberry32 } from '../src/util/random.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const { values } = parseArgs({ options: {
  file: { type: 'string' }, input: { type: 'string', default: '3,56,56' }, base: { type: 'string', default: 'dist-base' },
  threads: { type: 'string', default: '1' }, batch: { type: 'string', default: '16' }, reps: { type: 'string', default: '3' },
  rounds: { type: 'string', default: '4' }, profile: { type: 'boolean', default: false }, top: { type: 'string', default: '12' },
  layout: { type: 'string', default: 'kept' }, baseLayout: { type: 'string' },
  inner: { type: 'string' },
} });
const base = await import(path.resolve(root, values.base!, 'src', 'formats', 'onnx', 'training', 'index.js')) as typeof current;
const batch = Number(values.batch);
// `--inner W`: this tree's graph puts the batch innermost up to output width W (rules.ts, BATCH_INNER).
if (values.inner !== undefined) BATCH_INNER.rule = (wo) => wo <= Number(values.inner);
const sample = values.input!.split(',').map(Number);
const pixels = sample.reduce((a, b) => a * b, 1);
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
const onnx = await readOnnxModel(values.file!);
const layers = findConv3x3(onnx).layers;
const cross = parseMask('010/111/010');
const masks = new Map(layers.map((l) => [l.id, cross]));
const start = new Map(layers.map((l) => [l.id, maskWeights(l.weights, kernelCount(l), cross)]));
const input = onnx.graph.input![0].name!;
const r = mulberry32(2);
const xs = Float32Array.from({ length: batch * pixels }, () => r());
const probe = await ort.InferenceSession.create(probeModelBytes(onnx, start, current.computedValues(onnx)), { intraOpNumThreads: 1 });
const shapes = await probeShapes(probe, input, xs, [batch, ...sample]);
await probe.release();
const onehot = new Float32Array(batch * 10);
for (let i = 0; i < batch; i++) onehot[i * 10 + (i % 10)] = 1;
const options: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: Number(values.threads), interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 4,
  extra: { session: { intra_op: { allow_spinning: '0' } } },
};
const arms = [] as { label: string; bytes: Uint8Array; session: ort.InferenceSession; feeds: Record<string, ort.Tensor>; fetch: string[]; wall: number[]; cpu: number[] }[];
for (const [label, lib] of [['base', base], ['this', current]] as const) {
  const b = lib.buildTrainingGraph(onnx, { trainable: layers.map((l) => l.id), head: lib.headValue(onnx), shapes, masks, layout: (label === 'base' ? values.baseLayout ?? values.layout : values.layout) as 'full' | 'kept', loss: { objective: 'cross-entropy', temperature: 2, distillWeight: 0 } });
  if (!b.ok) throw new Error(`${label}: no training graph`);
  const g = b.graph;
  const session = await ort.InferenceSession.create(g.bytes, options);
  const feeds: Record<string, ort.Tensor> = { [g.data]: new ort.Tensor('float32', xs, [batch, ...sample]), [g.lossInputs.labels!]: new ort.Tensor('float32', onehot, [batch, 10]) };
  for (const w of g.weights) feeds[w.name] = new ort.Tensor('float32', w.positions ? packKept(start.get(w.name)!, w.positions) : start.get(w.name)!, w.dims);
  arms.push({ label, bytes: g.bytes, session, feeds, fetch: [g.loss, ...g.weights.map((w) => w.grad)], wall: [], cpu: [] });
}
const outs = await Promise.all(arms.map((a) => a.session.run(a.feeds, a.fetch)));
let worst = 0;
arms[0].fetch.forEach((name, k) => {
  const x = outs[0][name].data as Float32Array;
  const y = outs[1][arms[1].fetch[k]].data as Float32Array;
  if (x.length !== y.length) return; // two layouts: compared by the tests, not here
  let scale = 1e-12;
  for (const v of x) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / scale);
});
const l0 = os.loadavg()[0];
for (let round = 0; round < Number(values.rounds); round++) {
  for (const a of round % 2 ? [...arms].reverse() : arms) {
    for (let i = 0; i < Number(values.reps); i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await a.session.run(a.feeds, a.fetch);
      a.wall.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      a.cpu.push((c.user + c.system) / 1000);
    }
  }
}
const [b0, t1] = arms;
console.log(`${path.basename(values.file!)}, input ${values.input}, batch ${batch}, ${values.threads} thread(s), ${values.rounds} interleaved rounds of ${values.reps} steps, load ${l0.toFixed(1)}-${os.loadavg()[0].toFixed(1)}; largest gradient difference ${worst.toExponential(1)} of scale`);
console.log(`  base ${med(b0.wall).toFixed(1)} ms (CPU ${med(b0.cpu).toFixed(1)} ms, ${(batch / med(b0.cpu) * 1000).toFixed(1)} img/s)   this ${med(t1.wall).toFixed(1)} ms (CPU ${med(t1.cpu).toFixed(1)} ms, ${(batch / med(t1.cpu) * 1000).toFixed(1)} img/s)   this/base wall x${(med(t1.wall) / med(b0.wall)).toFixed(3)}, CPU x${(med(t1.cpu) / med(b0.cpu)).toFixed(3)}`);
for (const a of arms) await a.session.release();

if (values.profile) {
  for (const a of arms) {
    const prefix = path.join(os.tmpdir(), `kprune-abdeep-${process.pid}-${a.label.replace(/\W/g, '')}`);
    const session = await ort.InferenceSession.create(a.bytes, { ...options, enableProfiling: true, profileFilePrefix: prefix });
    const runs = 3;
    for (let i = 0; i < runs; i++) await session.run(a.feeds, a.fetch);
    session.endProfiling();
    await session.release();
    const file = path.join(os.tmpdir(), readdirSync(os.tmpdir()).find((f) => f.startsWith(path.basename(prefix)))!);
    const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string; input_type_shape?: Record<string, number[]>[] } }[];
    rmSync(file, { force: true });
    const byOp = new Map<string, number>();
    const byNode = new Map<string, { op: string; us: number; shapes: string }>();
    let total = 0;
    for (const ev of events) {
      if (ev.cat !== 'Node' || !ev.name.endsWith('_kernel_time')) continue;
      const op = ev.args?.op_name ?? '?';
      byOp.set(op, (byOp.get(op) ?? 0) + ev.dur);
      const name = ev.name.replace(/_kernel_time$/, '');
      const n = byNode.get(name) ?? { op, us: 0, shapes: (ev.args?.input_type_shape ?? []).map((t) => `[${Object.values(t)[0]?.join(',')}]`).join(' ') };
      n.us += ev.dur;
      byNode.set(name, n);
      total += ev.dur;
    }
    console.log(`${a.label}: summed kernel time ${(total / runs / 1000).toFixed(1)} ms a step`);
    for (const [op, us] of [...byOp].sort((x, y) => y[1] - x[1]).slice(0, 14)) console.log(`  ${op.padEnd(22)} ${(us / runs / 1000).toFixed(2).padStart(8)} ms  ${(100 * us / total).toFixed(1).padStart(5)}%`);
    console.log('  slowest nodes:');
    for (const [, n] of [...byNode].sort((x, y) => y[1].us - x[1].us).slice(0, Number(values.top))) console.log(`    ${(n.us / runs / 1000).toFixed(2).padStart(7)} ms  ${n.op.padEnd(14)} ${n.shapes}`);
  }
}
