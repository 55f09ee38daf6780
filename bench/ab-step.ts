/**
 * `node dist/bench/ab-step.js --base dist-base [--models vgg-fmnist,dwsep-fmnist] [--threads 1]`:
 * kprune's onnxruntime training step built by this tree's graph builder against the one of another
 * build (`--base`: a copy of dist/ made from the code before a change), side by side in one
 * process: rounds interleaved, wall and process CPU time per step, medians (issue #14). The step
 * is profile-step's: cross masks on every 3x3 convolution, cross-entropy, batch 64, weights and
 * data fed as tensors made once.
 */
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
import * as current from '../src/formats/onnx/training/index.js';
import { probeShapes } from '../src/runtime/ort/training-session.js';
import { mulberry32 } from '../src/util/random.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const { values } = parseArgs({ options: {
  base: { type: 'string', default: 'dist-base' }, models: { type: 'string', default: 'vgg-fmnist,dwsep-fmnist' },
  threads: { type: 'string', default: '1' }, batch: { type: 'string', default: '64' }, reps: { type: 'string', default: '15' }, rounds: { type: 'string', default: '6' },
} });
const base = await import(path.resolve(root, values.base!, 'src', 'formats', 'onnx', 'training', 'index.js')) as typeof current;
const batch = Number(values.batch);
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
// On a busy machine the fastest steps are the ones nothing else interrupted: quoted beside the medians.
const low = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 10)];
for (const model of values.models!.split(',')) {
  const onnx = await readOnnxModel(path.join(root, 'fixtures', 'models', `${model}.onnx`));
  const layers = findConv3x3(onnx).layers;
  const cross = parseMask('010/111/010');
  const masks = new Map(layers.map((l) => [l.id, cross]));
  const start = new Map(layers.map((l) => [l.id, maskWeights(l.weights, kernelCount(l), cross)]));
  const r = mulberry32(2);
  const xs = Float32Array.from({ length: batch * 784 }, () => r());
  const probe = await ort.InferenceSession.create(probeModelBytes(onnx, start, current.computedValues(onnx)), { intraOpNumThreads: 1 });
  const shapes = await probeShapes(probe, 'input', xs, [batch, 1, 28, 28]);
  await probe.release();
  const onehot = new Float32Array(batch * 10);
  for (let i = 0; i < batch; i++) onehot[i * 10 + (i % 10)] = 1;
  const arms = [] as { label: string; session: ort.InferenceSession; feeds: Record<string, ort.Tensor>; fetch: string[]; wall: number[]; cpu: number[]; loss: number }[];
  // A second session of the base graph measures the noise of the comparison itself (A/A).
  for (const [label, lib] of [['base', base], ['this', current], ['base again', base]] as const) {
    const b = lib.buildTrainingGraph(onnx, { trainable: layers.map((l) => l.id), head: lib.headValue(onnx), shapes, masks, loss: { objective: 'cross-entropy', temperature: 2, distillWeight: 0 } });
    if (!b.ok) throw new Error(`${label}: no training graph`);
    const g = b.graph;
    const session = await ort.InferenceSession.create(g.bytes, {
      intraOpNumThreads: Number(values.threads), interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 4,
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    const feeds: Record<string, ort.Tensor> = { [g.data]: new ort.Tensor('float32', xs, [batch, 1, 28, 28]), [g.lossInputs.labels!]: new ort.Tensor('float32', onehot, [batch, 10]) };
    for (const w of g.weights) feeds[w.name] = new ort.Tensor('float32', start.get(w.name)!, w.dims);
    arms.push({ label, session, feeds, fetch: [g.loss, ...g.weights.map((w) => w.grad)], wall: [], cpu: [], loss: NaN });
  }
  // Same loss and gradients from both graphs before timing them.
  const outs = await Promise.all(arms.map((a) => a.session.run(a.feeds, a.fetch)));
  let worst = 0;
  arms[0].fetch.forEach((name, k) => {
    const x = outs[0][name].data as Float32Array;
    const y = outs[1][arms[1].fetch[k]].data as Float32Array;
    let scale = 1e-6;
    for (const v of x) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / scale);
  });
  for (const a of arms) for (let i = 0; i < 3; i++) await a.session.run(a.feeds, a.fetch);
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
  const [b0, t1, b2] = arms;
  console.log(`${model}, batch ${batch}, ${values.threads} thread(s), ${values.rounds} interleaved rounds of ${values.reps} steps, load ${l0.toFixed(1)}-${os.loadavg()[0].toFixed(1)}; largest gradient difference ${worst.toExponential(1)} of scale`);
  console.log(`  base ${med(b0.wall).toFixed(2)} ms (CPU ${med(b0.cpu).toFixed(2)} ms)   this ${med(t1.wall).toFixed(2)} ms (CPU ${med(t1.cpu).toFixed(2)} ms)   this/base wall x${(med(t1.wall) / med(b0.wall)).toFixed(3)}, CPU x${(med(t1.cpu) / med(b0.cpu)).toFixed(3)}`);
  console.log(`  10th percentile wall: base ${low(b0.wall).toFixed(2)}, this ${low(t1.wall).toFixed(2)}, base again ${low(b2.wall).toFixed(2)} ms; this/base x${(low(t1.wall) / low(b0.wall)).toFixed(3)}, again/base x${(low(b2.wall) / low(b0.wall)).toFixed(3)}`);
  console.log(`  A/A: base again ${med(b2.wall).toFixed(2)} ms (CPU ${med(b2.cpu).toFixed(2)} ms), again/base wall x${(med(b2.wall) / med(b0.wall)).toFixed(3)}, CPU x${(med(b2.cpu) / med(b0.cpu)).toFixed(3)}; this/again CPU x${(med(t1.cpu) / med(b2.cpu)).toFixed(3)}`);
  for (const a of arms) await a.session.release();
}
