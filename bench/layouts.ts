/**
 * `npm run bench:layouts`: what each layout buys on the bundled ResNet- and VGG-style models with
 * `cross`: stored 3x3 weights, file size, and onnxruntime latency of the written model against the
 * original, measured side by side in one process (interleaved runs), at batch 1 and 8.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { prune } from '../src/index.js';
import type { PruneReport } from '../src/index.js';
import { markdownTable } from './stats.js';

const root = path.resolve(new URL('../..', import.meta.url).pathname);
const models = ['resnet-fmnist.onnx', 'vgg-fmnist.onnx'];
const layouts = ['masked', 'decomposed', 'auto'] as const;
const batches = [1, 8];
const runs = Number(process.env.KPRUNE_BENCH_RUNS ?? 300);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'kprune-bench-layouts-'));
const rows: string[][] = [];
const results: unknown[] = [];
try {
  for (const model of models) {
    for (const batch of batches) {
      for (const layout of layouts) {
        process.stderr.write(`${model} batch ${batch} ${layout}\n`);
        const r: PruneReport = await prune(path.join(root, 'fixtures', 'models', model), {
          shape: 'cross', layout, batch, latencyRuns: runs, output: path.join(tmp, `${model}.${layout}.${batch}.onnx`),
        });
        const stored = r.layers.reduce((a, l) => a + l.storedWeights, 0) / r.layers.reduce((a, l) => a + l.params, 0);
        const lat = 'status' in r.latency ? null : r.latency;
        const chosen = r.layers.filter((l) => l.layout === 'decomposed').length;
        rows.push([
          model, String(batch), layout, layout === 'auto' ? `${chosen}/${r.layers.length} decomposed` : '',
          stored.toFixed(3), (r.after.size.bytes / r.before.size.bytes).toFixed(3),
          lat ? `${lat.before.medianMs.toFixed(3)} / ${lat.after.medianMs.toFixed(3)}` : '?',
          lat ? lat.ratio.toFixed(3) : '?',
          lat ? `${(lat.after.p25Ms / lat.before.p75Ms).toFixed(2)}–${(lat.after.p75Ms / lat.before.p25Ms).toFixed(2)}` : '?',
        ]);
        results.push({ model, batch, layout, stored, fileRatio: r.after.size.bytes / r.before.size.bytes, latency: r.latency, layoutTimings: r.layoutTimings });
      }
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`kprune layouts benchmark, shape cross: ${cpu}, ${os.cpus().length} cores, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; latency = onnxruntime-node, default threads, median of ${runs} interleaved runs\n`);
console.log(markdownTable(
  ['model', 'batch', 'layout', 'auto chose', 'stored 3x3 weights (x dense)', 'file (x original)', 'latency ms original / slimmed', 'latency ratio', 'ratio range (quartiles)'],
  rows, ['l', 'r', 'l', 'l', 'r', 'r', 'r', 'r', 'r'],
));
mkdirSync(path.join(root, 'bench', 'out'), { recursive: true });
writeFileSync(path.join(root, 'bench', 'out', 'layouts.json'), JSON.stringify(results, null, 2));
