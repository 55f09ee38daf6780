/**
 * `node dist/bench/train-deep.js`: fine-tuning speed on a model of the size people bring, and how
 * it grows with the input: a ResNet-18 (torchvision's layout, 3-channel input, BatchNorm folded by
 * PyTorch's ONNX exporter; bench/torch_deep.py builds it with seeded weights) at several input
 * sizes. The same step — forward, cross-entropy, backward to the 16 reshaped 3x3 filters (cross),
 * Adam — timed side by side, rounds interleaved:
 *
 *   onnxruntime, one session, one thread   vs   PyTorch, one thread
 *   onnxruntime, one session, 2 threads (kprune's default on this model)   vs   PyTorch, 2 threads
 *   onnxruntime, 2 worker threads (one session each)   vs   PyTorch, 2 threads
 *
 * Per step: median wall time over the rounds (each round the median of `steps` steps after a
 * warm-up); images/s and the ratio to PyTorch at the same thread count; the load average per size.
 *
 *   node dist/bench/train-deep.js [--sizes 56,112,224] [--batch 16] [--steps 3] [--rounds 3] [--workers 2]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { kernelCount } from '../src/model/conv.js';
import { parseMask } from '../src/core/lattice.js';
import { maskWeights } from '../src/core/reshape.js';
import type { Dataset } from '../src/data/types.js';
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { readOnnxModel } from '../src/formats/onnx/read.js';
import { buildTrainingGraph, computedValues, headValue } from '../src/formats/onnx/training/index.js';
import { probeModelBytes } from '../src/models/onnx/probe.js';
import { openTrainingSession, probeShapes } from '../src/runtime/ort/training-session.js';
import { OrtTrainer } from '../src/runtime/ort/trainer.js';
import { TrainPool } from '../src/runtime/ort/train-pool.js';
import { mulberry32 } from '../src/util/random.js';
import { machineInfo, markdownTable, median } from './stats.js';

const { values: args } = parseArgs({ options: {
  sizes: { type: 'string', default: '56,112,224' }, batch: { type: 'string', default: '16' }, steps: { type: 'string', default: '3' },
  rounds: { type: 'string', default: '3' }, workers: { type: 'string', default: '2' },
} });
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const PYTHON = '/usr/bin/python3';
const script = path.join(root, 'bench', 'torch_deep.py');
const batch = Number(args.batch);
const steps = Number(args.steps);
const workers = Number(args.workers);
const dir = mkdtempSync(path.join(os.tmpdir(), 'kprune-train-deep-'));
const rows: string[][] = [];
const log = (s: string) => process.stderr.write(`${s}\n`);

function torchStep(size: number, threads: number): number {
  const r = spawnSync(PYTHON, [script, '--size', String(size), '--batch', String(batch), '--reps', String(steps), '--threads', String(threads)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PyTorch: ${r.stderr.trim().split('\n').slice(-1)[0]}`);
  return (JSON.parse(r.stdout) as { stepMs: number }).stepMs;
}

try {
  for (const size of args.sizes!.split(',').map(Number)) {
    const file = path.join(dir, `resnet18-${size}.onnx`);
    const exported = spawnSync(PYTHON, [script, '--size', String(size), '--export', file], { encoding: 'utf8' });
    if (exported.status !== 0) throw new Error(`export: ${exported.stderr}`);
    const model = await readOnnxModel(file);
    const layers = findConv3x3(model).layers;
    const cross = parseMask('010/111/010');
    const masks = new Map(layers.map((l) => [l.id, cross]));
    const start = new Map(layers.map((l) => [l.id, maskWeights(l.weights, kernelCount(l), cross)]));
    const head = headValue(model);
    const input = model.graph.input![0].name!;
    const pixels = 3 * size * size;
    const r = mulberry32(7);
    const count = batch * 4;
    const train: Dataset = { source: 'random', count, sampleDims: [3, size, size], layout: 'NCHW', channelMean: [0.5, 0.5, 0.5], x: Float32Array.from({ length: count * pixels }, () => r()), labels: Int32Array.from({ length: count }, (_, i) => i % 10) };
    const graphAt = async (n: number) => {
      const probe = await ort.InferenceSession.create(probeModelBytes(model, start, computedValues(model)), { intraOpNumThreads: 1 });
      const shapes = await probeShapes(probe, input, train.x.subarray(0, n * pixels), [n, 3, size, size]);
      await probe.release();
      const built = buildTrainingGraph(model, { trainable: layers.map((l) => l.id), head, shapes, masks, layout: 'kept', loss: { objective: 'cross-entropy', temperature: 2, distillWeight: 0 } });
      if (!built.ok) throw new Error(`no training graph: ${JSON.stringify(built.missing)}`);
      return built.graph;
    };
    const graphWith = (threads: number) => async (n: number) => {
      const g = await graphAt(n);
      return { session: await openTrainingSession(g.bytes, { threads }), data: g.data, loss: g.loss, labels: g.lossInputs.labels, headValues: g.flatDims[1], weights: g.weights };
    };
    const graphFor = graphWith(1);
    const pool = TrainPool.open(workers);
    const trainers = {
      one: new OrtTrainer({ graphFor, start, masks, train, optimizer: 'adam', momentum: 0 }),
      threads: new OrtTrainer({ graphFor: graphWith(workers), start, masks, train, optimizer: 'adam', momentum: 0 }),
      workers: new OrtTrainer({ graphFor, start, masks, train, optimizer: 'adam', momentum: 0, shards: { pool, graphBytesFor: async (n) => (await graphAt(n)).bytes } }),
    };
    const indices = (s: number) => Uint32Array.from({ length: batch }, (_, i) => (s * batch + i) % count);
    for (const t of Object.values(trainers)) await t.step(indices(0), 1e-4); // warm-up: graphs opened
    const ms: Record<'one' | 'threads' | 'workers' | 'torch1' | 'torchN', number[]> = { one: [], threads: [], workers: [], torch1: [], torchN: [] };
    for (let round = 0; round < Number(args.rounds); round++) {
      for (const key of (round % 2 ? ['workers', 'threads', 'one'] : ['one', 'threads', 'workers']) as ('one' | 'threads' | 'workers')[]) {
        const per: number[] = [];
        for (let s = 0; s < steps; s++) {
          const t0 = performance.now();
          await trainers[key].step(indices(s + 1), 1e-4);
          per.push(performance.now() - t0);
        }
        ms[key].push(median(per));
      }
      ms.torch1.push(torchStep(size, 1));
      ms.torchN.push(torchStep(size, workers));
      log(`size ${size} round ${round + 1}: one ${ms.one.at(-1)!.toFixed(0)} ms, ${workers} threads ${ms.threads.at(-1)!.toFixed(0)} ms, workers ${ms.workers.at(-1)!.toFixed(0)} ms, PyTorch 1 thread ${ms.torch1.at(-1)!.toFixed(0)} ms, ${workers} threads ${ms.torchN.at(-1)!.toFixed(0)} ms`);
    }
    for (const t of Object.values(trainers)) await t.release();
    await pool.release();
    const m = Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, median(v)])) as Record<keyof typeof ms, number>;
    const ips = (stepMs: number) => (batch / stepMs * 1000).toFixed(1);
    rows.push([
      `${size}x${size}`, ips(m.one), ips(m.torch1), (m.torch1 / m.one).toFixed(2),
      ips(m.threads), ips(m.workers), ips(m.torchN), (m.torchN / m.threads).toFixed(2), (m.torchN / m.workers).toFixed(2), os.loadavg()[0].toFixed(1),
    ]);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const m = machineInfo();
console.log(`Training step of a ResNet-18 (torchvision layout, 3-channel input; 16 3x3 filters reshaped to a cross and trained), batch ${batch}, Adam, cross-entropy; medians of ${args.rounds} interleaved rounds of ${steps} steps; ${m.cpu}, ${m.cores} cores, Node ${m.node}, onnxruntime-node ${ort.env.versions.node}, ${new Date().toISOString().slice(0, 16)}Z`);
console.log(markdownTable(
  ['input', 'onnxruntime, 1 thread: img/s', 'PyTorch, 1 thread: img/s', 'ratio', `onnxruntime, one session, ${workers} threads: img/s`, `onnxruntime, ${workers} workers: img/s`, `PyTorch, ${workers} threads: img/s`, 'ratio (session)', 'ratio (workers)', 'load'],
  rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
));
