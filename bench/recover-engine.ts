/**
 * The recovery engine's cost, old against new, side by side in one run (`npm run bench:recover --
 * --sections engine`, or `node dist/bench/recover-engine.js`):
 *
 * - scaling: generated plain and residual stacks of 8, 16, 32 and 64 3x3 layers; time per layer
 *   in the first and the last quarter of the layers, for both engines. The old engine re-runs the
 *   model from the input for every layer, so its time per layer grows with depth; the new one
 *   should stay flat.
 * - resnet18: a ResNet-18 layout (17 3x3 layers, one input channel, 56x56) with 512 calibration
 *   images: reconstruction time, old and new.
 *
 * "Old" is kprune at an earlier revision (default 1e499c0, the last commit before engine 2),
 * exported with `git archive` into a temporary folder and built there with this tree's TypeScript
 * and node_modules; "new" is this tree. Each run is `node dist/bench/worker.js reconstruct ...` in
 * its own process (reshape to the shape + reconstruct, no evaluation or writing), and the two
 * engines alternate in order from model to model, so load on the machine hits both alike.
 *
 *   node dist/bench/recover-engine.js [--sections scaling,resnet18] [--depths 8,16,32,64]
 *     [--kinds plain,residual] [--channels 32] [--size 28] [--calib 128] [--resnet-calib 512]
 *     [--resnet-size 56] [--shape cross] [--data fashion-mnist] [--baseline-rev 1e499c0]
 *     [--repo .] [--json bench/out/recover-engine.json] [--render <an earlier run's json>]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildNet, NetSpec } from './gen-nets.js';
import { RunRecord, runWorker } from './run-worker.js';
import { fmtNum, machineInfo, markdownTable } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const root = path.resolve(here, '..', '..');
const log = (s: string) => process.stderr.write(`${s}\n`);
const TIMEOUT_MS = 3_600_000;

interface EngineRun {
  engine: 'old' | 'new';
  run?: RunRecord;
  error?: string;
  loadBefore: number;
  /** Reconstruction proper: per-layer times, plus the new engine's target pass. */
  reconstructMs?: number;
  layerMs?: number[];
}

interface ModelResult {
  spec: NetSpec;
  conv3x3: number;
  macs: number;
  params: number;
  calib: number;
  runs: EngineRun[];
}

function list(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

/** kprune at `rev`, built in a temporary folder (its own sources, this tree's node_modules). */
function buildBaseline(repo: string, rev: string, into: string): string {
  const dir = path.join(into, `kprune-${rev}`);
  mkdirSync(dir, { recursive: true });
  const archive = execFileSync('git', ['-C', repo, 'archive', '--format=tar', rev], { maxBuffer: 1 << 30 });
  execFileSync('tar', ['-x', '-C', dir], { input: archive });
  symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(dir, 'tsconfig.json')], { stdio: 'inherit' });
  return dir;
}

const quarter = (xs: number[], last: boolean) => {
  const q = Math.max(1, Math.floor(xs.length / 4));
  const part = last ? xs.slice(xs.length - q) : xs.slice(0, q);
  return part.reduce((a, b) => a + b, 0) / part.length;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sections: { type: 'string', default: 'scaling,resnet18' },
      depths: { type: 'string', default: '8,16,32,64' },
      kinds: { type: 'string', default: 'plain,residual' },
      channels: { type: 'string', default: '32' },
      size: { type: 'string', default: '28' },
      calib: { type: 'string', default: '128' },
      'resnet-calib': { type: 'string', default: '512' },
      'resnet-size': { type: 'string', default: '56' },
      shape: { type: 'string', default: 'cross' },
      data: { type: 'string', default: 'fashion-mnist' },
      seed: { type: 'string', default: '0' },
      'baseline-rev': { type: 'string', default: '1e499c0' },
      /** The git repository holding the baseline revision (default: this tree). */
      repo: { type: 'string', default: root },
      json: { type: 'string', default: path.join(root, 'bench', 'out', 'recover-engine.json') },
      /** Print the tables of an earlier run's JSON and stop. */
      render: { type: 'string' },
    },
    strict: true,
  });
  if (values.render) {
    const saved = JSON.parse(await fs.readFile(values.render, 'utf8')) as { date: string; machine: ReturnType<typeof machineInfo>; settings: Settings; results: ModelResult[] };
    render(saved.results, saved.settings, saved.machine, new Date(saved.date));
    return;
  }
  const sections = list(values.sections);
  const machine = machineInfo();
  const date = new Date();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kprune-bench-engine-'));
  const cleanup = () => rmSync(tmp, { recursive: true, force: true });
  process.once('SIGINT', () => { cleanup(); process.exit(130); });
  const results: ModelResult[] = [];
  try {
    log(`building the baseline (kprune at ${values['baseline-rev']}) in ${tmp}`);
    const baseline = buildBaseline(values.repo, values['baseline-rev'], tmp);
    const specs: { spec: NetSpec; calib: number }[] = [];
    if (sections.includes('scaling')) {
      for (const kind of list(values.kinds) as ('plain' | 'residual')[]) {
        for (const depth of list(values.depths).map(Number)) {
          specs.push({ spec: { name: `${kind}-${depth}`, kind, depth, channels: Number(values.channels), size: Number(values.size) }, calib: Number(values.calib) });
        }
      }
    }
    if (sections.includes('resnet18')) {
      specs.push({ spec: { name: `resnet18-${values['resnet-size']}`, kind: 'resnet18', size: Number(values['resnet-size']) }, calib: Number(values['resnet-calib']) });
    }
    for (const [i, { spec, calib }] of specs.entries()) {
      const net = buildNet(spec);
      const file = path.join(tmp, `${spec.name}.onnx`);
      writeFileSync(file, net.bytes);
      const result: ModelResult = { spec, conv3x3: net.conv3x3, macs: net.macs, params: net.params, calib, runs: [] };
      // Alternate which engine goes first.
      const order: ('old' | 'new')[] = i % 2 === 0 ? ['old', 'new'] : ['new', 'old'];
      for (const engine of order) {
        const r: EngineRun = { engine, loadBefore: os.loadavg()[0] };
        const args = ['reconstruct', file, 'segments', values.shape, values.data, String(calib), values.seed, ...(engine === 'old' ? [baseline] : [])];
        try {
          const run = await runWorker(args, TIMEOUT_MS);
          r.run = run;
          const rec = run.reconstruct!;
          r.layerMs = rec.layers.map((l) => l.ms);
          r.reconstructMs = r.layerMs.reduce((a, b) => a + b, 0) + (rec.propagation?.targetPassMs ?? 0);
          log(`[${i + 1}/${specs.length}] ${spec.name} ${engine}: reconstruction ${fmtNum(r.reconstructMs / 1000, 1)} s (call ${fmtNum(run.ms / 1000, 1)} s), ms/layer first quarter ${fmtNum(quarter(r.layerMs, false), 0)}, last ${fmtNum(quarter(r.layerMs, true), 0)}, peak RSS ${fmtNum(run.maxRssKiB / 1024, 0)} MiB, load ${fmtNum(r.loadBefore, 1)}`);
        } catch (e) {
          r.error = e instanceof Error ? e.message : String(e);
          log(`[${i + 1}/${specs.length}] ${spec.name} ${engine}: FAILED ${r.error}`);
        }
        result.runs.push(r);
      }
      results.push(result);
    }
  } finally {
    cleanup();
  }

  render(results, values, machine, date);
  mkdirSync(path.dirname(values.json), { recursive: true });
  await fs.writeFile(values.json, `${JSON.stringify({ date: date.toISOString(), machine, settings: values, results }, null, 2)}\n`);
  log(`wrote ${values.json}`);
}

type Settings = Record<string, string>;

function render(results: ModelResult[], values: Settings, machine: ReturnType<typeof machineInfo>, date: Date): void {
  const get = (m: ModelResult, e: 'old' | 'new') => m.runs.find((r) => r.engine === e)!;
  const s = (ms: number | undefined) => (ms === undefined ? '–' : fmtNum(ms / 1000, 1));
  const msq = (r: EngineRun, last: boolean) => (r.layerMs ? fmtNum(quarter(r.layerMs, last), 0) : '–');
  const mean = (r: EngineRun) => (r.reconstructMs !== undefined && r.layerMs ? fmtNum(r.reconstructMs / r.layerMs.length, 0) : '–');
  const ratio = (m: ModelResult) => {
    const o = get(m, 'old').reconstructMs;
    const n = get(m, 'new').reconstructMs;
    return o && n ? `${fmtNum(o / n, 1)}x` : '–';
  };
  const rows = results.map((m) => {
    const o = get(m, 'old');
    const n = get(m, 'new');
    const p = n.run?.reconstruct?.propagation;
    return [
      m.spec.name, String(m.conv3x3), fmtNum(m.macs / 1e6, 0), String(m.calib),
      s(o.reconstructMs), s(n.reconstructMs), ratio(m), mean(o), mean(n),
      `${msq(o, false)} → ${msq(o, true)}`, `${msq(n, false)} → ${msq(n, true)}`,
      p ? s(p.targetPassMs) : '–',
      o.run ? fmtNum(o.run.maxRssKiB / 1024, 0) : '–', n.run ? fmtNum(n.run.maxRssKiB / 1024, 0) : '–',
      p?.peakCacheBytes !== undefined ? fmtNum(p.peakCacheBytes / 2 ** 20, 0) : '–',
      p?.maxLiveBytesPerImage !== undefined ? `${fmtNum(p.maxLiveBytesPerImage / 1024, 0)} + ${fmtNum((p.targetBytesPerImage ?? 0) / 1024, 0)}` : '–',
      `${fmtNum(o.loadBefore, 1)} / ${fmtNum(n.loadBefore, 1)}`,
    ];
  });
  const table = markdownTable(
    ['Model', '3x3 layers', 'MMAC/image', 'Calib', 'Old s', 'New s', 'Speed-up', 'Old ms/layer', 'New ms/layer', 'Old ms/layer (first → last quarter)', 'New ms/layer (first → last quarter)', 'New target pass s', 'Old peak RSS MiB', 'New peak RSS MiB', 'New cache peak MiB', 'New cache KiB/image (live + targets)', 'Load before (old / new)'],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
  const header = `kprune recovery engine, old (${values['baseline-rev']}) vs new — ${machine.cpu}, ${machine.cores} cores, ${fmtNum(machine.totalMemGiB)} GiB RAM, Node ${machine.node}, ${date.toISOString().slice(0, 10)}`;
  const notes = [
    `Reconstruction time = the sum of the per-layer times the report gives (each layer: its inputs and targets, statistics, solve, errors), plus the new engine's one target pass; data loading and model loading excluded. Shape \`${values.shape}\`, data \`${values.data}\` resized to the model's input, seed ${values.seed}.`,
    'ms/layer: reconstruction time over the layers (the new engine\'s target pass included), and the mean of the first and the last quarter of the layers in model order. Old: every layer re-runs the whole model twice (reshaped and original), so its time per layer grows with the model\'s depth; new: one pass of the original for every target, then only the segment between consecutive layers, so time per layer stays flat.',
    'Peak RSS: the worker process\'s maxRSS (model, data, runtime, cache). Cache: the chunks of cached activations (live values at a cut) and the sampled target rows, at their peak.',
  ];
  process.stdout.write(`${header}\n\n${table}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:recover-engine failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
