/**
 * `node dist/bench/profile-step.js --model dwsep-fmnist --threads 2`: where one onnxruntime training
 * step's time goes (issue #14): kprune's training graph (cross masks, cross-entropy) run with
 * onnxruntime's profiler, node times summed by operator type and by the forward/backward part they
 * belong to; the slowest nodes listed. Session options to compare can be given as JSON
 * (`--options '{"executionMode":"parallel","interOpNumThreads":2}'`).
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
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { probeModelBytes } from '../src/models/onnx/probe.js';
import { readOnnxModel } from '../src/formats/onnx/read.js';
import { buildTrainingGraph, computedValues, headValue } from '../src/formats/onnx/training/index.js';
import { probeShapes } from '../src/runtime/ort/training-session.js';
import { mulberry32 } from '../src/util/random.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

const { values } = parseArgs({ options: {
  model: { type: 'string', default: 'dwsep-fmnist' }, threads: { type: 'string', default: '2' }, batch: { type: 'string', default: '64' },
  reps: { type: 'string', default: '20' }, options: { type: 'string', default: '{}' }, top: { type: 'string', default: '15' },
  variants: { type: 'string' }, rounds: { type: 'string', default: '6' },
  /** Operator types whose every node is listed with its input shapes (comma-separated). */
  nodes: { type: 'string', default: '' },
  /** With --variants: each variant also on the dense graph (no pieces: every 3x3 whole). */
  dense: { type: 'boolean', default: false },
} });
const batch = Number(values.batch);
const onnx = await readOnnxModel(path.join(root, 'fixtures', 'models', `${values.model}.onnx`));
const layers = findConv3x3(onnx).layers;
const cross = parseMask('010/111/010');
const masks = new Map(layers.map((l) => [l.id, cross]));
const start = new Map(layers.map((l) => [l.id, maskWeights(l.weights, kernelCount(l), cross)]));
const r = mulberry32(2);
const xs = Float32Array.from({ length: batch * 784 }, () => r());
const probe = await ort.InferenceSession.create(probeModelBytes(onnx, start, computedValues(onnx)), { intraOpNumThreads: 1 });
const shapes = await probeShapes(probe, 'input', xs, [batch, 1, 28, 28]);
await probe.release();
const build = (withMasks: boolean) => {
  const b = buildTrainingGraph(onnx, { trainable: layers.map((l) => l.id), head: headValue(onnx), shapes, masks: withMasks ? masks : undefined, loss: { objective: 'cross-entropy', temperature: 2, distillWeight: 0 } });
  if (!b.ok) throw new Error('no training graph');
  return b.graph;
};
const g = build(true);
const dense = values.dense ? build(false) : undefined;
const base: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: Number(values.threads), interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 4,
  extra: { session: { intra_op: { allow_spinning: '0' } } },
};
const onehot = new Float32Array(batch * 10);
for (let i = 0; i < batch; i++) onehot[i * 10 + (i % 10)] = 1;
const feeds: Record<string, ort.Tensor> = { [g.data]: new ort.Tensor('float32', xs, [batch, 1, 28, 28]), [g.lossInputs.labels!]: new ort.Tensor('float32', onehot, [batch, 10]) };
for (const w of g.weights) feeds[w.name] = new ort.Tensor('float32', start.get(w.name)!, w.dims);
const fetch = [g.loss, ...g.weights.map((w) => w.grad)];

if (values.variants) {
  // Several session options side by side in one process, rounds interleaved: wall and CPU per step.
  const options = JSON.parse(values.variants) as ort.InferenceSession.SessionOptions[];
  const variants = dense ? [...options, ...options.map((v) => ({ ...v, dense: true }))] : options;
  const sessions = await Promise.all(variants.map((v) => ort.InferenceSession.create('dense' in v ? dense!.bytes : g.bytes, { ...base, ...v })));
  const wall = variants.map(() => [] as number[]);
  const cpu = variants.map(() => [] as number[]);
  for (const s of sessions) for (let i = 0; i < 3; i++) await s.run(feeds, fetch);
  const l0 = os.loadavg()[0];
  for (let round = 0; round < Number(values.rounds); round++) {
    for (let k = 0; k < sessions.length; k++) {
      for (let i = 0; i < Number(values.reps); i++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await sessions[k].run(feeds, fetch);
        wall[k].push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        cpu[k].push((c.user + c.system) / 1000);
      }
    }
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
  console.log(`${values.model}, batch ${batch}, ${values.threads} threads, load ${l0.toFixed(1)}-${os.loadavg()[0].toFixed(1)}:`);
  variants.forEach((v, k) => console.log(`  ${med(wall[k]).toFixed(1).padStart(7)} ms (CPU ${med(cpu[k]).toFixed(1)} ms)  x${(med(wall[k]) / med(wall[0])).toFixed(2)}  ${JSON.stringify(v)}`));
  for (const s of sessions) await s.release();
  process.exit(0);
}

const prefix = path.join(os.tmpdir(), `kprune-profile-${process.pid}`);
const session = await ort.InferenceSession.create(g.bytes, {
  ...base,
  ...JSON.parse(values.options!),
  enableProfiling: true, profileFilePrefix: prefix,
});
for (let i = 0; i < 3; i++) await session.run(feeds, fetch);
const wall: number[] = [];
for (let i = 0; i < Number(values.reps); i++) {
  const t0 = performance.now();
  await session.run(feeds, fetch);
  wall.push(performance.now() - t0);
}
session.endProfiling();
await session.release();
// onnxruntime names the file after the prefix and the start time.
const file = path.join(os.tmpdir(), readdirSync(os.tmpdir()).find((f) => f.startsWith(path.basename(prefix)))!);
const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string; input_type_shape?: Record<string, number[]>[] } }[];
rmSync(file, { force: true });
const runs = Number(values.reps) + 3;
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
wall.sort((a, b) => a - b);
console.log(`${values.model}, batch ${batch}, ${values.threads} threads, options ${values.options}: step median ${wall[wall.length >> 1].toFixed(1)} ms; summed kernel time ${(total / runs / 1000).toFixed(1)} ms a step; load ${os.loadavg()[0].toFixed(1)}`);
for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1])) console.log(`  ${op.padEnd(22)} ${(us / runs / 1000).toFixed(2).padStart(8)} ms  ${(100 * us / total).toFixed(1).padStart(5)}%`);
console.log('  slowest nodes:');
for (const [name, n] of [...byNode].sort((a, b) => b[1].us - a[1].us).slice(0, Number(values.top))) console.log(`    ${(n.us / runs / 1000).toFixed(2).padStart(7)} ms  ${n.op.padEnd(14)} ${name}`);
const listed = new Set(values.nodes!.split(',').filter(Boolean));
if (listed.size > 0) {
  console.log(`  every node of ${[...listed].join(', ')}, in graph order:`);
  for (const [name, nd] of byNode) if (listed.has(nd.op)) console.log(`    ${(nd.us / runs / 1000).toFixed(2).padStart(7)} ms  ${nd.op.padEnd(14)} ${name.padEnd(44)} ${nd.shapes}`);
}
