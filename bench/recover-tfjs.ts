/**
 * Layer-wise recovery of TF.js LayersModels, rerun engine against segments, side by side in one
 * process (`npm run bench:recover-tfjs`): generated Sequential stacks of 3x3 Conv2D + ReLU
 * (`--depths`, `--channels`, `--size`) with a Dense head, random NHWC calibration images; each
 * depth is reconstructed with both engines, alternating which goes first, `--rounds` times. The
 * rerun engine runs the whole model twice per layer, so its time per layer grows with depth;
 * segments run the graph between consecutive layers, so theirs should stay flat.
 *
 *   node dist/bench/recover-tfjs.js [--depths 4,8,16] [--channels 16] [--size 28] [--calib 128]
 *     [--rounds 1] [--shape cross]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type * as TF from '../src/runtime/tfjs/tf.js';
import { loadModel, recover, reshape } from '../src/index.js';
import { tfjsRuntime } from '../src/runtime/tfjs/backend.js';
import { mulberry32 } from '../src/util/random.js';
import { fmtNum, machineInfo, markdownTable, median } from './stats.js';

const { values: args } = parseArgs({
  options: {
    depths: { type: 'string', default: '4,8,16' },
    channels: { type: 'string', default: '16' },
    size: { type: 'string', default: '28' },
    calib: { type: 'string', default: '128' },
    rounds: { type: 'string', default: '1' },
    shape: { type: 'string', default: 'cross' },
  },
});
const depths = args.depths!.split(',').map(Number);
const channels = Number(args.channels);
const size = Number(args.size);
const calib = Number(args.calib);
const rounds = Number(args.rounds);
const log = (s: string) => process.stderr.write(`${s}\n`);

function npy(file: string, dims: number[], seed: number): void {
  const header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims.join(', ')},), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  const head = Buffer.from(`\x93NUMPY\x01\x00`, 'latin1');
  const len = Buffer.alloc(2);
  len.writeUInt16LE(header.length + pad + 1);
  const r = mulberry32(seed);
  const values = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => r());
  writeFileSync(file, Buffer.concat([head, len, Buffer.from(`${header}${' '.repeat(pad)}\n`, 'latin1'), Buffer.from(values.buffer)]));
}

async function stack(tf: typeof TF, depth: number, dir: string): Promise<string> {
  const m = tf.sequential();
  for (let i = 0; i < depth; i++) {
    m.add(tf.layers.conv2d({ ...(i === 0 ? { inputShape: [size, size, 1] } : {}), filters: channels, kernelSize: 3, padding: 'same', activation: 'relu', name: `c${i}` }));
  }
  m.add(tf.layers.globalAveragePooling2d({}));
  m.add(tf.layers.dense({ units: 10 }));
  // He-scaled weights, so activations neither vanish nor explode over 64 layers.
  const r = mulberry32(depth);
  for (const w of m.weights) {
    const shape = w.shape as number[];
    const fanIn = shape.length === 4 ? shape[0] * shape[1] * shape[2] : shape[0];
    const n = shape.reduce((a, b) => a * b, 1);
    const scale = shape.length === 1 ? 0.01 : Math.sqrt(2 / fanIn) * Math.sqrt(3);
    w.write(tf.tensor(Float32Array.from({ length: n }, () => (2 * r() - 1) * scale), shape));
  }
  mkdirSync(dir, { recursive: true });
  await m.save(tf.io.withSaveHandler(async (a) => {
    const json = { format: 'layers-model', modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] };
    writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
    writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(a.weightData as ArrayBuffer));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return path.join(dir, 'model.json');
}

const { tf, description } = await tfjsRuntime();
const work = mkdtempSync(path.join(os.tmpdir(), 'kprune-bench-tfjs-'));
const rows: string[][] = [];
try {
  const data = path.join(work, 'calib.npy');
  npy(data, [calib, size, size, 1], 1);
  for (const depth of depths) {
    const dir = path.join(work, `d${depth}`);
    const file = await stack(tf as unknown as typeof TF, depth, dir);
    const model = await loadModel(file);
    const reshaped = reshape(model, args.shape!);
    const ms: Record<'rerun' | 'segments', number[]> = { rerun: [], segments: [] };
    for (let round = 0; round < rounds; round++) {
      const order: ('rerun' | 'segments')[] = (round + depth) % 2 === 0 ? ['rerun', 'segments'] : ['segments', 'rerun'];
      for (const engine of order) {
        const t0 = performance.now();
        const r = await recover(model, reshaped, { data, calib, eval: 1, seed: 0, propagation: engine });
        const t = performance.now() - t0;
        if (r.propagation.engine !== engine) throw new Error(`${engine} fell back: ${r.propagation.fallbackReason}`);
        ms[engine].push(t);
        log(`depth ${depth} ${engine}: ${fmtNum(t / 1000, 2)} s (${fmtNum(t / depth / 1000, 3)} s per layer), load ${os.loadavg()[0].toFixed(1)}`);
      }
    }
    const [a, b] = [median(ms.rerun), median(ms.segments)];
    rows.push([String(depth), fmtNum(a / 1000, 2), fmtNum(a / depth / 1000, 3), fmtNum(b / 1000, 2), fmtNum(b / depth / 1000, 3), fmtNum(a / b, 2)]);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const m = machineInfo();
console.log(`TF.js LayersModel recovery, ${args.shape}, ${channels} channels at ${size}x${size}, ${calib} calibration images, ${description}; ${m.cpu}, ${m.cores} cores, Node ${m.node}, load ${os.loadavg()[0].toFixed(1)}, ${new Date().toISOString().slice(0, 10)}`);
console.log(markdownTable(['3x3 layers', 'rerun (s)', 'per layer', 'segments (s)', 'per layer', 'rerun / segments'], rows, ['r', 'r', 'r', 'r', 'r', 'r']));
