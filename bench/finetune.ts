/**
 * `node dist/bench/finetune.js`: fine-tuning speed and the issue #4 goal.
 *
 * 1. Convolution backward on the wasm backend, one layer (batch 64, 28x28, 16 -> 16): the forward,
 *    TF.js's own Conv2DBackpropInput, an im2col + MatMul filter gradient, and kprune's gradients
 *    (src/runtime/onnx-tfjs/conv.ts).
 * 2. Training-step speed on every bundled model: a TF.js forward pass and a training step (forward,
 *    backward, Adam, masks; no distillation targets) of the same batch, on wasm and on cpu, with
 *    kprune's gradients and (cpu only: wasm lacks the kernels) TF.js's own. onnxruntime's forward
 *    pass of the same batch for reference.
 * 3. The goal: ResNet (resnet-fmnist) reshaped to a cross, reconstructed from 512 calibration
 *    images, fine-tuned for 300 steps of 64 images (with labels; and without, by distillation);
 *    top-1 on the 10,000 Fashion-MNIST test images of the original, reshaped, reconstructed and
 *    fine-tuned models, and wall times.
 *
 * Each measurement runs in its own process (TF.js backends are process-wide). The machine is shared:
 * every row records the 1-minute load average before it ran; times are medians (and minimums) of
 * several runs, with process CPU time beside wall time where it helps.
 *
 * 4. `torch` (not in the default sections; needs Debian's python3-torch): the same training step in
 *    PyTorch on this CPU (bench/torch_step.py, the fixtures' own classes), side by side with kprune's.
 *
 *   node dist/bench/finetune.js [--sections micro,speed,goal,torch] [--models resnet-fmnist,...]
 *     [--batch 64] [--steps 300] [--json bench/out/finetune.json]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import type * as TF from '@tensorflow/tfjs';
import { kernelCount } from '../src/core/conv.js';
import { parseMask } from '../src/core/lattice.js';
import { maskWeights } from '../src/core/reshape.js';
import { loadData } from '../src/data/index.js';
import type { Dataset } from '../src/data/types.js';
import { loadModel } from '../src/formats/index.js';
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { probeModelBytes } from '../src/formats/onnx/probe.js';
import { readOnnxModel } from '../src/formats/onnx/read.js';
import { openData, recoverWeights } from '../src/pipeline/recover.js';
import { onnxTfjsRuntime } from '../src/runtime/onnx-tfjs/backend.js';
import type { TfjsBackend } from '../src/runtime/onnx-tfjs/backend.js';
import { conv2d } from '../src/runtime/onnx-tfjs/conv.js';
import { finetune } from '../src/runtime/onnx-tfjs/finetune.js';
import { OnnxTfjsGraph } from '../src/runtime/onnx-tfjs/graph.js';
import { mulberry32 } from '../src/util/random.js';
import { fmtNum, markdownTable, median, min } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const root = path.resolve(here, '..', '..');
const PREFIX = 'KPRUNE_FINETUNE ';
const log = (s: string) => process.stderr.write(`${s}\n`);
const modelFile = (m: string) => path.join(root, 'fixtures', 'models', `${m}.onnx`);

// ----------------------------------------------------------------------------------------- worker

function timeIt(reps: number, f: () => void, warmUp = 2): { wall: number[]; cpu: number[] } {
  for (let i = 0; i < warmUp; i++) f();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    f();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wall, cpu };
}

async function microWorker(): Promise<unknown> {
  const { tf } = await onnxTfjsRuntime('wasm');
  const [n, h, ci, co] = [64, 28, 16, 16];
  const r = mulberry32(1);
  const x = tf.tensor4d(Float32Array.from({ length: n * h * h * ci }, () => r() - 0.5), [n, h, h, ci]);
  const w = tf.tensor4d(Float32Array.from({ length: 9 * ci * co }, () => r() - 0.5), [3, 3, ci, co]);
  const dy = tf.tensor4d(Float32Array.from({ length: n * h * h * co }, () => r() - 0.5), [n, h, h, co]);
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [1, 1], [1, 1], [0, 0]];
  const spec = { strides: [1, 1] as [number, number], dilations: [1, 1] as [number, number], pads: [1, 1, 1, 1] as [number, number, number, number], group: 1 };
  const run = (f: () => TF.Tensor) => () => tf.tidy(() => { f().dataSync(); });
  const rows: Record<string, number> = {};
  const m = (name: string, f: () => TF.Tensor, reps = 8) => { rows[name] = median(timeIt(reps, run(f)).wall); };
  m('forward (XNNPACK conv)', () => tf.conv2d(x, w, 1, pad));
  m('input gradient, TF.js Conv2DBackpropInput', () => tf.conv2dTranspose(dy, w, [n, h, h, ci], 1, pad), 3);
  m('filter gradient, im2col + MatMul', () => {
    const xp = tf.pad(x, pad);
    const cols: TF.Tensor[] = [];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) cols.push(tf.slice(xp, [0, i, j, 0], [n, h, h, ci]));
    return tf.matMul(tf.reshape(tf.concat(cols, 3), [n * h * h, 9 * ci]), tf.reshape(dy, [n * h * h, co]), true, false);
  }, 3);
  const grads = (need: { x: boolean; w: boolean }) => () => {
    const { grads: g } = tf.valueAndGrads((...a: TF.Tensor[]) => tf.sum(tf.mul(conv2d(tf, need.x ? a[0] as TF.Tensor4D : x, need.w ? a[a.length - 1] as TF.Tensor4D : w, spec, need), dy)))([...(need.x ? [x] : []), ...(need.w ? [w] : [])]);
    return g[0];
  };
  m('forward + input gradient, kprune', grads({ x: true, w: false }));
  m('forward + filter gradient, kprune', grads({ x: false, w: true }));
  return { shape: `batch ${n}, ${h}x${h}, ${ci} -> ${co}, 3x3 pad 1`, ms: rows };
}

async function speedWorker(model: string, backend: TfjsBackend, gradients: 'kprune' | 'tfjs', batch: number, reps: number): Promise<unknown> {
  const { tf, description } = await onnxTfjsRuntime(backend);
  const onnx = await readOnnxModel(modelFile(model));
  const layers = findConv3x3(onnx).layers;
  const graph = OnnxTfjsGraph.compile(onnx, tf, { gradients });
  const weights = graph.loadWeights({ trainable: layers.map((l) => l.id) });
  const r = mulberry32(2);
  const xs = Float32Array.from({ length: batch * 784 }, () => r());
  const x = tf.tensor(xs, [batch, 1, 28, 28]);
  const labels = tf.tensor1d(Int32Array.from({ length: batch }, (_, i) => i % 10), 'int32');
  const opt: TF.Optimizer = tf.train.adam(1e-4);
  const mask = tf.tensor(Float32Array.from({ length: 9 }, (_, p) => [1, 3, 4, 5, 7].includes(p) ? 1 : 0), [3, 3, 1, 1]);
  const forward = () => tf.tidy(() => { graph.run(weights, new Map([['input', x]])).get(graph.outputs[0])!.dataSync(); });
  const step = () => tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const logits = graph.run(weights, new Map([['input', x]])).get(graph.outputs[0])! as TF.Tensor2D;
      return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(labels, 10), tf.logSoftmax(logits)), 1))) as TF.Scalar;
    }, [...weights.variables.values()]);
    const masked: TF.NamedTensorMap = {};
    for (const v of weights.variables.values()) masked[v.name] = tf.mul(grads[v.name], mask);
    opt.applyGradients(masked);
    for (const v of weights.variables.values()) v.assign(tf.mul(v, mask));
    value.dataSync();
  });
  // Interleaved, so that load on the machine hits both alike.
  const f: { wall: number[]; cpu: number[] } = { wall: [], cpu: [] };
  const s: { wall: number[]; cpu: number[] } = { wall: [], cpu: [] };
  forward();
  step();
  for (let i = 0; i < reps; i++) {
    const a = timeIt(1, forward, 0);
    const b = timeIt(1, step, 0);
    f.wall.push(...a.wall); f.cpu.push(...a.cpu); s.wall.push(...b.wall); s.cpu.push(...b.cpu);
  }
  const session = await ort.InferenceSession.create(modelFile(model), { intraOpNumThreads: 1 });
  const feeds = { input: new ort.Tensor('float32', xs, [batch, 1, 28, 28]) };
  await session.run(feeds);
  const ortMs: number[] = [];
  for (let i = 0; i < Math.max(5, reps); i++) {
    const t0 = performance.now();
    await session.run(feeds);
    ortMs.push(performance.now() - t0);
  }
  await session.release();
  return {
    model, backend: description, gradients, batch, reps,
    forwardMs: { median: median(f.wall), min: min(f.wall), cpuMedian: median(f.cpu) },
    stepMs: { median: median(s.wall), min: min(s.wall), cpuMedian: median(s.cpu) },
    ortForwardMs: median(ortMs),
  };
}

async function topOne(onnxFile: string, weights: ReadonlyMap<string, Float32Array>, test: Dataset): Promise<number> {
  const onnx = await readOnnxModel(onnxFile);
  const s = await ort.InferenceSession.create(probeModelBytes(onnx, weights, []));
  const per = 784;
  let correct = 0;
  for (let i = 0; i < test.count; i += 500) {
    const n = Math.min(500, test.count - i);
    const y = (await s.run({ input: new ort.Tensor('float32', test.x.subarray(i * per, (i + n) * per), [n, 1, 28, 28]) })).logits.data as Float32Array;
    for (let k = 0; k < n; k++) {
      let b = 0;
      for (let j = 1; j < 10; j++) if (y[k * 10 + j] > y[k * 10 + b]) b = j;
      if (b === test.labels![i + k]) correct++;
    }
  }
  await s.release();
  return correct / test.count;
}

async function goalWorker(model: string, labels: boolean, steps: number, batch: number, trainCount: number, heldOutCount: number): Promise<unknown> {
  const file = modelFile(model);
  const t0 = performance.now();
  const loaded = await loadModel(file);
  const onnx = await readOnnxModel(file);
  const cross = parseMask('010/111/010');
  const masks = new Map(loaded.layers.map((l) => [l.id, cross]));
  const masked = new Map(loaded.layers.map((l) => [l.id, maskWeights(l.weights, kernelCount(l), cross)]));
  // Reconstruction as `--data fashion-mnist` runs it: 512 calibration images from the train split.
  const ctx = await openData(loaded, { data: 'fashion-mnist', calib: 512, eval: 100, seed: 0 });
  let reconstructed: ReadonlyMap<string, Float32Array>;
  try {
    reconstructed = (await recoverWeights(ctx, loaded, masks, masked)).weights;
  } finally {
    await ctx.runners.release();
    await ctx.engine.release();
    await ctx.runner.release();
  }
  const t1 = performance.now();
  // Fine-tuning data: train-split images (disjoint train and held-out parts); the test split scores.
  const split = await loadData('fashion-mnist', { inputDims: loaded.inputs[0].dims, calib: trainCount + heldOutCount, eval: 10000, seed: 1, numClasses: 10 });
  const part = (d: Dataset, a: number, b: number): Dataset => ({ ...d, count: b - a, x: d.x.subarray(a * 784, b * 784), labels: labels ? d.labels?.subarray(a, b) : undefined });
  const data = { train: part(split.calib, 0, trainCount), heldOut: part(split.calib, trainCount, trainCount + heldOutCount) };
  const t2 = performance.now();
  let lastLog = 0;
  const result = await finetune(onnx, loaded.layers, reconstructed, masks, data, {
    steps, batch, labels,
    onStep: (p) => {
      if (p.step - lastLog >= 50 || p.step === p.steps) {
        lastLog = p.step;
        log(`  step ${p.step}/${p.steps} loss ${p.lossAverage.toFixed(4)} ${p.imagesPerSecond.toFixed(0)} img/s ETA ${(p.etaMs / 1000).toFixed(0)} s`);
      }
    },
  });
  const t3 = performance.now();
  const test = split.eval;
  const top1 = {
    original: await topOne(file, new Map(), test),
    reshaped: await topOne(file, masked, test),
    reconstructed: await topOne(file, reconstructed, test),
    finetuned: await topOne(file, result.weights, test),
  };
  return {
    model, labels, steps, batch, trainCount, heldOutCount,
    backend: result.backend, objective: result.objective, bestStep: result.bestStep, imagesPerSecond: result.imagesPerSecond,
    heldOut: result.heldOut, history: result.history, top1,
    seconds: { reconstruct: (t1 - t0) / 1000, data: (t2 - t1) / 1000, finetune: (t3 - t2) / 1000, train: result.trainMs / 1000, heldOutEval: result.evalMs / 1000, total: (t3 - t0) / 1000 },
  };
}

async function worker(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      worker: { type: 'string' }, model: { type: 'string' }, backend: { type: 'string' }, gradients: { type: 'string' },
      batch: { type: 'string' }, reps: { type: 'string' }, labels: { type: 'string' }, steps: { type: 'string' },
      train: { type: 'string' }, heldout: { type: 'string' },
    },
  });
  let out: unknown;
  switch (values.worker) {
    case 'micro': out = await microWorker(); break;
    case 'speed': out = await speedWorker(values.model!, values.backend as TfjsBackend, values.gradients as 'kprune' | 'tfjs', Number(values.batch), Number(values.reps)); break;
    case 'goal': out = await goalWorker(values.model!, values.labels === 'true', Number(values.steps), Number(values.batch), Number(values.train), Number(values.heldout)); break;
    default: throw new Error(`unknown worker ${values.worker}`);
  }
  process.stdout.write(`${PREFIX}${JSON.stringify(out)}\n`);
}

// ----------------------------------------------------------------------------------------- parent

function runWorker(args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; process.stderr.write(d); });
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(PREFIX));
      if (code !== 0 || !line) reject(new Error(`worker ${args.join(' ')} failed (exit ${code}): ${err.trim().split('\n').slice(-3).join(' ')}`));
      else resolve(JSON.parse(line.slice(PREFIX.length)) as Record<string, unknown>);
    });
  });
}

const load = () => os.loadavg()[0];
const pct = (x: number) => fmtNum(x * 100, 2);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sections: { type: 'string', default: 'micro,speed,goal' },
      models: { type: 'string', default: 'resnet-fmnist,vgg-fmnist,dwsep-fmnist,misc-fmnist' },
      batch: { type: 'string', default: '64' },
      steps: { type: 'string', default: '300' },
      json: { type: 'string', default: path.join(root, 'bench', 'out', 'finetune.json') },
    },
  });
  const sections = new Set(values.sections!.split(','));
  const models = values.models!.split(',');
  const batch = Number(values.batch);
  const cpus = os.cpus();
  const record: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: { cpu: cpus[0]?.model.trim(), cores: cpus.length, node: process.version },
  };
  const md: string[] = [`# kprune fine-tuning benchmark\n\n${cpus[0]?.model.trim()}, ${cpus.length} cores, Node ${process.version}; load average at start ${fmtNum(load(), 2)}.`];

  if (sections.has('micro')) {
    log('micro: one convolution layer on wasm');
    const l = load();
    const r = await runWorker(['--worker', 'micro']) as { shape: string; ms: Record<string, number> };
    record.micro = { ...r, load: l };
    md.push(`\n## Convolution backward on wasm (${r.shape}; load ${fmtNum(l, 1)})\n`);
    md.push(markdownTable(['operation', 'ms (median)'], Object.entries(r.ms).map(([k, v]) => [k, fmtNum(v, 1)]), ['l', 'r']));
  }

  if (sections.has('speed')) {
    const rows: string[][] = [];
    const all: unknown[] = [];
    for (const model of models) {
      // The cpu backend is ~30x slower: a quarter of the batch and fewer runs keep it to minutes.
      for (const [backend, gradients, reps, b] of [['wasm', 'kprune', 12, batch], ['cpu', 'kprune', 2, Math.max(1, batch >> 2)], ['cpu', 'tfjs', 2, Math.max(1, batch >> 2)]] as const) {
        log(`speed: ${model} on ${backend} (${gradients} gradients), batch ${b}`);
        const l = load();
        try {
          const r = await runWorker(['--worker', 'speed', '--model', model, '--backend', backend, '--gradients', gradients, '--batch', String(b), '--reps', String(reps)]) as {
            forwardMs: { median: number; min: number; cpuMedian: number }; stepMs: { median: number; min: number; cpuMedian: number }; ortForwardMs: number;
          };
          all.push({ ...r, load: l });
          rows.push([
            model, backend, gradients, String(b), fmtNum(r.forwardMs.median, 1), fmtNum(r.stepMs.median, 1), fmtNum(b / (r.stepMs.median / 1000), 1),
            fmtNum(r.stepMs.median / r.forwardMs.median, 2), fmtNum(r.stepMs.cpuMedian / r.forwardMs.cpuMedian, 2), fmtNum(r.stepMs.min / r.forwardMs.min, 2),
            fmtNum(r.ortForwardMs, 1), fmtNum(l, 1),
          ]);
        } catch (e) {
          rows.push([model, backend, gradients, String(b), '–', '–', '–', '–', '–', '–', '–', `failed: ${(e as Error).message.slice(0, 60)}`]);
        }
      }
    }
    record.speed = all;
    md.push('\n## Training step vs. forward pass\n');
    md.push('Step = forward + backward of the 3x3 filters + Adam + masks; no distillation targets. Ratios: of medians (wall), of median CPU times, of minimums. TF.js gradients on wasm do not run (no Conv2DBackpropFilter kernel).\n');
    md.push(markdownTable(
      ['model', 'backend', 'gradients', 'batch', 'forward ms', 'step ms', 'step img/s', 'step/fwd', 'step/fwd (CPU time)', 'step/fwd (min)', 'onnxruntime fwd ms (1 thread)', 'load'],
      rows, ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ));
  }

  if (sections.has('torch')) {
    // The same step (3x3 filters, cross masks, Adam, cross-entropy, BatchNorm frozen) in PyTorch on
    // this CPU, interleaved with kprune's per model so that load hits both alike.
    const rows: string[][] = [];
    const all: unknown[] = [];
    for (const model of models) {
      log(`torch: ${model}, batch ${batch}: kprune (wasm) and PyTorch (1 and 2 threads)`);
      const l = load();
      try {
        const ours = await runWorker(['--worker', 'speed', '--model', model, '--backend', 'wasm', '--gradients', 'kprune', '--batch', String(batch), '--reps', '12']) as { stepMs: { median: number }; backend: string };
        const torch = [1, 2].map((threads) => {
          const r = spawnSync('/usr/bin/python3', [path.join(root, 'bench', 'torch_step.py'), '--model', model, '--batch', String(batch), '--reps', '12', '--threads', String(threads)], { encoding: 'utf8' });
          if (r.status !== 0) throw new Error(`PyTorch: ${r.stderr.trim().split('\n').slice(-1)[0]}`);
          return JSON.parse(r.stdout) as { stepMs: number; forwardMs: number; torch: string };
        });
        all.push({ model, batch, kprune: ours, torch, load: l });
        const ips = (ms: number) => fmtNum(batch / (ms / 1000), 0);
        rows.push([
          model, String(batch), fmtNum(ours.stepMs.median, 1), ips(ours.stepMs.median),
          fmtNum(torch[0].stepMs, 1), ips(torch[0].stepMs), fmtNum(torch[1].stepMs, 1), ips(torch[1].stepMs),
          fmtNum(ours.stepMs.median / torch[0].stepMs, 2), fmtNum(ours.stepMs.median / torch[1].stepMs, 2), fmtNum(l, 1),
        ]);
      } catch (e) {
        rows.push([model, String(batch), '–', '–', '–', '–', '–', '–', '–', '–', `failed: ${(e as Error).message.slice(0, 60)}`]);
      }
    }
    record.torch = all;
    md.push('\n## Training step: kprune (TF.js wasm, one thread) vs PyTorch (CPU)\n');
    md.push('Same architectures (the fixtures\' PyTorch classes, bench/torch_step.py), batch, masks, optimiser and loss; medians of 12 interleaved steps. Ratio = kprune step time / PyTorch step time (below 1: kprune faster).\n');
    md.push(markdownTable(
      ['model', 'batch', 'kprune ms', 'kprune img/s', 'PyTorch 1 thread ms', 'img/s', 'PyTorch 2 threads ms', 'img/s', 'ratio vs 1 thread', 'ratio vs 2 threads', 'load'],
      rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ));
  }

  if (sections.has('goal')) {
    const goals: unknown[] = [];
    const rows: string[][] = [];
    for (const labels of [true, false]) {
      log(`goal: resnet-fmnist cross, reconstruct + ${values.steps} fine-tuning steps ${labels ? 'with labels' : 'without labels (distillation)'}`);
      const l = load();
      const r = await runWorker(['--worker', 'goal', '--model', 'resnet-fmnist', '--labels', String(labels), '--steps', values.steps!, '--batch', String(batch), '--train', '20000', '--heldout', '1000']) as {
        objective: string; bestStep: number; imagesPerSecond: number; backend: string;
        heldOut: { before: { top1?: number; agreement?: number; loss: number }; after: { top1?: number; agreement?: number; loss: number } };
        top1: { original: number; reshaped: number; reconstructed: number; finetuned: number };
        seconds: { reconstruct: number; finetune: number; total: number; train: number; heldOutEval: number };
      };
      goals.push({ ...r, load: l });
      // In points, exact to 0.01 for 10,000 samples (no float noise at the 0.5 boundary).
      const drop = Math.round((r.top1.original - r.top1.finetuned) * 1e4) / 100;
      rows.push([
        labels ? 'labels' : 'no labels', r.objective, pct(r.top1.original), pct(r.top1.reshaped), pct(r.top1.reconstructed), pct(r.top1.finetuned),
        fmtNum(drop, 2), String(r.bestStep),
        `${r.heldOut.before.top1 !== undefined ? `top-1 ${pct(r.heldOut.before.top1)} → ${pct(r.heldOut.after.top1!)}, ` : ''}agreement ${pct(r.heldOut.before.agreement!)} → ${pct(r.heldOut.after.agreement!)}, loss ${r.heldOut.before.loss.toFixed(4)} → ${r.heldOut.after.loss.toFixed(4)}`,
        fmtNum(r.imagesPerSecond, 0), fmtNum(r.seconds.reconstruct, 1), fmtNum(r.seconds.finetune, 1), fmtNum(r.seconds.total, 1),
        drop <= 0.5 && r.seconds.total < 300 ? 'met' : 'not met', fmtNum(l, 1),
      ]);
    }
    record.goal = goals;
    md.push(`\n## Goal: resnet-fmnist, cross, reconstruction + ${values.steps} fine-tuning steps (batch ${batch}), within 0.5 point of the original top-1 in under 5 minutes\n`);
    md.push('Top-1 on the 10,000 Fashion-MNIST test images (onnxruntime). Reconstruction: 512 train-split images; fine-tuning: 20,000 train-split images, checkpoint chosen on 1,000 other train-split images.\n');
    md.push(markdownTable(
      ['data', 'objective', 'original', 'reshaped', 'reconstructed', 'fine-tuned', 'drop (pt)', 'best step', 'held-out (chooses the step, by loss)', 'train img/s', 'reconstruct s', 'fine-tune s', 'total s', 'goal', 'load'],
      rows, ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'r', 'r', 'r', 'r', 'l', 'r'],
    ));
  }

  mkdirSync(path.dirname(values.json!), { recursive: true });
  writeFileSync(values.json!, `${JSON.stringify(record, null, 2)}\n`);
  process.stdout.write(`${md.join('\n')}\n`);
}

if (process.argv.includes('--worker')) {
  worker(process.argv.slice(2)).catch((e) => {
    log(e instanceof Error ? e.stack ?? e.message : String(e));
    process.exit(1);
  });
} else {
  main().catch((e) => {
    log(e instanceof Error ? e.stack ?? e.message : String(e));
    process.exit(1);
  });
}
