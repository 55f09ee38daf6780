/**
 * A training step in onnxruntime, one session with onnxruntime's own threads against the batch
 * split over worker threads (one one-thread session each, src/runtime/ort/train-pool.ts), and the
 * same step in PyTorch with as many threads as workers (bench/torch_step.py, when torch is
 * installed), side by side: rounds interleaved, medians of per-step wall and process CPU time.
 *
 *   node dist/bench/train-pool.js [--models resnet-fmnist,vgg-fmnist,dwsep-fmnist,misc-fmnist]
 *     [--batch 64] [--steps 12] [--rounds 3] [--workers 2]
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { kernelCount } from '../src/model/conv.js';
import { parseMask } from '../src/core/lattice.js';
import { maskWeights } from '../src/core/reshape.js';
import { loadData } from '../src/data/index.js';
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { readOnnxModel } from '../src/formats/onnx/read.js';
import { buildTrainingGraph, computedValues, headValue } from '../src/formats/onnx/training/index.js';
import { probeModelBytes } from '../src/models/onnx/probe.js';
import { openTrainingSession, probeShapes } from '../src/runtime/ort/training-session.js';
import { OrtTrainer } from '../src/runtime/ort/trainer.js';
import { TrainPool } from '../src/runtime/ort/train-pool.js';
import { machineInfo, markdownTable, median } from './stats.js';

const { values: args } = parseArgs({ options: {
  models: { type: 'string', default: 'resnet-fmnist,vgg-fmnist,dwsep-fmnist,misc-fmnist' },
  batch: { type: 'string', default: '64' }, steps: { type: 'string', default: '12' }, rounds: { type: 'string', default: '3' }, workers: { type: 'string', default: '2' },
} });
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const batch = Number(args.batch);
const workers = Number(args.workers);
const rows: string[][] = [];
const torch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
const split = await loadData(path.join(root, 'fixtures', 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz'), { inputDims: ['N', 1, 28, 28], calib: 512, eval: 16, seed: 1, numClasses: 10 });
for (const name of args.models!.split(',')) {
  const model = await readOnnxModel(path.join(root, 'fixtures', 'models', `${name}.onnx`));
  const layers = findConv3x3(model).layers;
  const cross = parseMask('010/111/010');
  const masks = new Map(layers.map((l) => [l.id, cross]));
  const start = new Map(layers.map((l) => [l.id, maskWeights(l.weights, kernelCount(l), cross)]));
  const head = headValue(model);
  const input = model.graph.input![0].name!;
  const bytesAt = async (n: number) => {
    const probe = await ort.InferenceSession.create(probeModelBytes(model, start, computedValues(model)), { intraOpNumThreads: 1 });
    const shapes = await probeShapes(probe, input, split.calib.x.subarray(0, n * 784), [n, 1, 28, 28]);
    await probe.release();
    const built = buildTrainingGraph(model, { trainable: layers.map((l) => l.id), head, shapes, masks, layout: 'kept', loss: { objective: 'cross-entropy', temperature: 2, distillWeight: 0 } });
    if (!built.ok) throw new Error('no training graph');
    return built.graph;
  };
  const graphFor = async (n: number) => {
    const g = await bytesAt(n);
    return { session: await openTrainingSession(g.bytes, {}), data: g.data, loss: g.loss, labels: g.lossInputs.labels, headValues: g.flatDims[1], weights: g.weights };
  };
  const pool = TrainPool.open(workers);
  const trainers = {
    threads: new OrtTrainer({ graphFor, start, masks, train: split.calib, optimizer: 'adam', momentum: 0 }),
    workers: new OrtTrainer({ graphFor, start, masks, train: split.calib, optimizer: 'adam', momentum: 0, shards: { pool, graphBytesFor: async (n) => (await bytesAt(n)).bytes } }),
  };
  const wall: Record<string, number[]> = { threads: [], workers: [] };
  const torchMs: number[] = [];
  const cpu: Record<string, number[]> = { threads: [], workers: [] };
  const indices = (s: number) => Uint32Array.from({ length: batch }, (_, i) => (s * batch + i) % split.calib.count);
  for (const t of Object.values(trainers)) await t.step(indices(0), 1e-3); // warm-up: graphs opened
  for (let r = 0; r < Number(args.rounds); r++) {
    for (const key of (r % 2 ? ['workers', 'threads'] : ['threads', 'workers']) as ('threads' | 'workers')[]) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let s = 0; s < Number(args.steps); s++) await trainers[key].step(indices(s), 1e-3);
      wall[key].push((performance.now() - t0) / Number(args.steps));
      const c = process.cpuUsage(c0);
      cpu[key].push((c.user + c.system) / 1000 / Number(args.steps));
    }
    if (torch) {
      const t = spawnSync('/usr/bin/python3', [path.join(root, 'bench', 'torch_step.py'), '--model', name, '--batch', String(batch), '--reps', args.steps!, '--threads', String(workers)], { encoding: 'utf8' });
      if (t.status !== 0) throw new Error(`PyTorch: ${t.stderr.trim().split('\n').slice(-1)[0]}`);
      torchMs.push((JSON.parse(t.stdout) as { stepMs: number }).stepMs);
    }
  }
  for (const t of Object.values(trainers)) await t.release();
  await pool.release();
  const [a, b] = [median(wall.threads), median(wall.workers)];
  const t = torchMs.length ? median(torchMs) : NaN;
  rows.push([
    name, `${(batch / a * 1000).toFixed(0)} (${a.toFixed(1)} ms; CPU ${median(cpu.threads).toFixed(1)} ms)`, `${(batch / b * 1000).toFixed(0)} (${b.toFixed(1)} ms; CPU ${median(cpu.workers).toFixed(1)} ms)`, (a / b).toFixed(2),
    Number.isFinite(t) ? `${(batch / t * 1000).toFixed(0)} (${t.toFixed(1)} ms)` : '–', Number.isFinite(t) ? (t / b).toFixed(2) : '–', os.loadavg()[0].toFixed(1),
  ]);
  process.stderr.write(`${name} done\n`);
}
const m = machineInfo();
console.log(`Training step, batch ${batch}, cross, Adam, cross-entropy: one session with onnxruntime's default threads vs ${workers} workers of one thread; ${m.cpu}, ${m.cores} cores, Node ${m.node}, ${new Date().toISOString().slice(0, 16)}Z`);
console.log(markdownTable(['model', 'one session, default threads: img/s', `${workers} workers: img/s`, 'workers / one session', `PyTorch, ${workers} threads: img/s`, 'workers / PyTorch', 'load'], rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r']));
