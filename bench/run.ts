/**
 * `npm run bench`: wall time, throughput and peak memory of `analyze` and `prune --shape cross`
 * (reshape, write, verify in onnxruntime, measure with gzip -6) on the bundled fixture models and on
 * a generated VGG-16-shaped model (~166 MB, written to a temp dir at bench time, never committed).
 *
 * Each measurement runs in a fresh `node dist/bench/worker.js` process, so max RSS is that one
 * operation's peak. Small models: 5 runs each; the large model: 3. Prints a Markdown table on
 * stdout, progress on stderr, and writes everything to bench/out/results.json.
 */
import { mkdirSync, mkdtempSync, rmSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, VERSION } from '../src/index.js';
import { WorkerOp } from './protocol.js';
import { RunRecord, runWorker } from './run-worker.js';
import { fmtMs, fmtNum, markdownTable, max, median, min, machineInfo } from './stats.js';
import { writeVgg16Model } from './vgg16.js';

const SMALL_RUNS = 5;
const LARGE_RUNS = 3;
const BASELINE_RUNS = 3;
/** A run that takes longer than this is killed and the bench fails (something is wrong). */
const RUN_TIMEOUT_MS = 240_000;

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const root = path.resolve(here, '..', '..');


interface Measurement {
  model: string;
  file: string;
  /** Model file plus external data files. */
  bytes: number;
  op: WorkerOp;
  runs: RunRecord[];
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** bytes / 10^6 / median seconds. */
  mbPerSec: number;
  medianMaxRssMiB: number;
  medianProcessMs: number;
  /** prune only: median of each phase's wall time from the report's `timings`. */
  phaseMedians?: Record<string, number>;
}

const log = (s: string) => process.stderr.write(`${s}\n`);


function summarize(model: string, file: string, bytes: number, op: WorkerOp, runs: RunRecord[]): Measurement {
  const ms = runs.map((r) => r.ms);
  const med = median(ms);
  const m: Measurement = {
    model, file, bytes, op, runs,
    medianMs: med, minMs: min(ms), maxMs: max(ms),
    mbPerSec: bytes / 1e6 / (med / 1000),
    medianMaxRssMiB: median(runs.map((r) => r.maxRssKiB)) / 1024,
    medianProcessMs: median(runs.map((r) => r.processMs)),
  };
  if (op === 'prune') {
    const phases = [...new Set(runs.flatMap((r) => Object.keys(r.timings ?? {})))];
    m.phaseMedians = Object.fromEntries(phases.map((p) => [p, median(runs.map((r) => r.timings?.[p] ?? 0))]));
  }
  return m;
}

async function filesBytes(files: string[]): Promise<number> {
  let total = 0;
  for (const f of files) total += (await fs.stat(f)).size;
  return total;
}

async function fixtureModels(): Promise<{ name: string; file: string }[]> {
  const dir = path.join(root, 'fixtures', 'models');
  // Skip outputs a user may have written beside the fixtures (*.kpruned.onnx).
  const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.onnx') && n !== 'no-3x3.onnx' && !n.includes('.kpruned.')).sort();
  const out = names.map((n) => ({ name: n, file: path.join(dir, n) }));
  out.push({ name: 'vgg-fmnist-external/model.onnx', file: path.join(dir, 'vgg-fmnist-external', 'model.onnx') });
  return out;
}

let step = 0;
let totalSteps = 0;

async function measure(name: string, file: string, bytes: number, op: 'analyze' | 'prune', runs: number, tmp: string): Promise<Measurement> {
  const records: RunRecord[] = [];
  for (let i = 0; i < runs; i++) {
    step++;
    let outDir: string | null = null;
    const args = [op, file];
    if (op === 'prune') {
      outDir = mkdtempSync(path.join(tmp, 'out-'));
      args.push(path.join(outDir, path.basename(file).replace(/\.onnx$/i, '.kpruned.onnx')));
    }
    try {
      const r = await runWorker(args, RUN_TIMEOUT_MS);
      records.push(r);
      const phases = r.timings ? `  [${Object.entries(r.timings).map(([k, v]) => `${k} ${v}`).join(', ')}]` : '';
      log(`[${step}/${totalSteps}] ${op} ${name} run ${i + 1}/${runs}: ${fmtMs(r.ms)} ms, max RSS ${fmtNum(r.maxRssKiB / 1024)} MiB${phases}`);
    } finally {
      if (outDir) rmSync(outDir, { recursive: true, force: true });
    }
  }
  return summarize(name, file, bytes, op, records);
}

async function main(): Promise<void> {
  const started = performance.now();
  const date = new Date();
  const machine = machineInfo();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kprune-bench-'));
  const cleanup = () => rmSync(tmp, { recursive: true, force: true });
  const onSignal = (sig: NodeJS.Signals) => { cleanup(); process.kill(process.pid, sig); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const fixtures = await fixtureModels();
    totalSteps = BASELINE_RUNS + fixtures.length * 2 * SMALL_RUNS + 2 * LARGE_RUNS;
    log(`kprune bench: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; temp dir ${tmp}`);

    // Peak RSS of a worker that only loads the library (Node + onnxruntime-node), for reference.
    const baseline: RunRecord[] = [];
    for (let i = 0; i < BASELINE_RUNS; i++) {
      step++;
      baseline.push(await runWorker(['baseline'], RUN_TIMEOUT_MS));
      log(`[${step}/${totalSteps}] baseline run ${i + 1}/${BASELINE_RUNS}: max RSS ${fmtNum(baseline[i].maxRssKiB / 1024)} MiB, process ${fmtMs(baseline[i].processMs)} ms`);
    }

    const results: Measurement[] = [];
    for (const f of fixtures) {
      const bytes = await filesBytes((await loadModel(f.file)).files);
      results.push(await measure(f.name, f.file, bytes, 'analyze', SMALL_RUNS, tmp));
      results.push(await measure(f.name, f.file, bytes, 'prune', SMALL_RUNS, tmp));
    }

    log('generating the VGG-16-shaped model...');
    const g0 = performance.now();
    const vggFile = path.join(tmp, 'vgg16-bench.onnx');
    const vgg = await writeVgg16Model(vggFile);
    const generateMs = performance.now() - g0;
    log(`generated ${vggFile}: ${fmtNum(vgg.bytes / 1e6)} MB, ${vgg.params.toLocaleString('en-US')} params, ${vgg.conv3x3Layers} 3x3 convs, in ${fmtMs(generateMs)} ms`);
    const vggName = 'vgg16-224 (generated)';
    results.push(await measure(vggName, vggFile, vgg.bytes, 'analyze', LARGE_RUNS, tmp));
    results.push(await measure(vggName, vggFile, vgg.bytes, 'prune', LARGE_RUNS, tmp));

    const totalMs = performance.now() - started;
    const baselineRssMiB = median(baseline.map((r) => r.maxRssKiB)) / 1024;

    // --- Markdown ---
    const header = `kprune ${VERSION} benchmark — ${machine.cpu}, ${machine.cores} cores, ${fmtNum(machine.totalMemGiB)} GiB RAM, Node ${machine.node}, ${date.toISOString().slice(0, 10)}`;
    const rows = results.map((m) => [
      m.model,
      fmtNum(m.bytes / 1e6, 2),
      m.op,
      String(m.runs.length),
      fmtMs(m.medianMs),
      `${fmtMs(m.minMs)}–${fmtMs(m.maxMs)}`,
      fmtNum(m.mbPerSec, 1),
      fmtNum(m.medianMaxRssMiB, 0),
    ]);
    const table = markdownTable(
      ['Model', 'Size (MB)', 'Op', 'Runs', 'Median ms', 'Min–max ms', 'MB/s', 'Peak RSS (MiB, median)'],
      rows,
      ['l', 'r', 'l', 'r', 'r', 'r', 'r', 'r'],
    );
    const prunes = results.filter((m) => m.op === 'prune');
    const phaseNames = [...new Set(prunes.flatMap((m) => Object.keys(m.phaseMedians ?? {})))];
    const phaseTable = markdownTable(
      ['Model (prune, median ms per phase)', ...phaseNames],
      prunes.map((m) => [m.model, ...phaseNames.map((p) => String(m.phaseMedians?.[p] ?? '–'))]),
      ['l', ...phaseNames.map(() => 'r' as const)],
    );
    const notes = [
      `Each run is a fresh Node process; times are the library call alone (process start and imports excluded).`,
      `MB/s = model bytes incl. external data (10^6) / median seconds. Peak RSS = process.resourceUsage().maxRSS; a worker that only imports kprune peaks at ${fmtNum(baselineRssMiB, 0)} MiB.`,
      `prune = load, analyze, reshape (cross), write (fsync), verify (one onnxruntime run of the output), measure (probe runs for MACs + gzip -6 of input and output files; after-figures measured on the written file, a second probe run).`,
      `Total bench time ${fmtNum(totalMs / 1000, 0)} s (VGG-16 model generated in ${fmtNum(generateMs / 1000)} s).`,
    ];
    process.stdout.write(`${header}\n\n${table}\n\n${phaseTable}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n`);

    // --- JSON ---
    const outDir = path.join(root, 'bench', 'out');
    mkdirSync(outDir, { recursive: true });
    const json = {
      tool: { name: 'kprune', version: VERSION },
      date: date.toISOString(),
      machine,
      settings: { smallRuns: SMALL_RUNS, largeRuns: LARGE_RUNS, shape: 'cross' },
      baseline: { runs: baseline, medianMaxRssMiB: baselineRssMiB },
      generated: { model: vggName, bytes: vgg.bytes, params: vgg.params, conv3x3Layers: vgg.conv3x3Layers, generateMs },
      results: results.map((m) => ({ ...m, file: path.relative(root, m.file).startsWith('..') ? path.basename(m.file) : path.relative(root, m.file) })),
      totalMs,
    };
    await fs.writeFile(path.join(outDir, 'results.json'), `${JSON.stringify(json, null, 2)}\n`);
    log(`wrote ${path.relative(process.cwd(), path.join(outDir, 'results.json'))}`);
  } finally {
    cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
