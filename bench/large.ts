/**
 * `npm run bench:large`: peak memory of kprune on large models, for the hardening goal "a model is
 * analyzed and reshaped with memory bounded near the size of its largest tensor plus the output, not
 * a multiple of the whole model".
 *
 * Cases, each generated at bench time into a temp folder (never committed) and streamed to disk one
 * tensor at a time:
 *   vgg16  the VGG-16-shaped ONNX of bench/vgg16.ts (~166 MB, inline raw_data), for comparison;
 *   onnx   bench/large-onnx.ts: 60 Conv 3x3 1024->1024, 2.26 GB in one external data file (> 2 GiB);
 *   tfjs   bench/large-tfjs.ts: a LayersModel of 100 Conv2D 3x3 512->512, 944 MB in 226 shards of 4 MiB.
 *
 * For each, the kprune CLI runs as a child process: `analyze <model> --json`, then
 * `prune <model> --shape cross -o <out> --json --no-run` (`--latency-runs 0` instead when the CLI has no
 * `--no-run`), so that neither the input nor the output is loaded into a runtime; `--with-run` also measures
 * prune without it). The child's peak RSS is process.resourceUsage().maxRSS written at exit by a
 * preloaded module (bench/maxrss-preload.ts; needs nothing installed). A failing run is recorded with
 * its message, not thrown. Prints a Markdown table on stdout, progress on stderr, and writes
 * bench/out/large.json.
 *
 *   node dist/bench/large.js [--dir <folder>] [--keep] [--cli <main.js>] [--out <file>] [--only vgg16,onnx,tfjs] [--runs <n>]
 *                            [--with-run] [--timeout <seconds>] [--onnx-layers <n>] [--onnx-channels <n>]
 *                            [--onnx-data-files <n>] [--tfjs-layers <n>] [--tfjs-channels <n>] [--shard-kib <n>]
 *
 * --dir: where models and outputs go (default <os tmpdir>/kprune-large-bench); with --keep the
 * generated models stay there and a later run with the same settings reuses them. Needs about
 * 2 x 2.3 GB of free disk for the ONNX case (model + output); each case's files are deleted before
 * the next is generated unless --keep.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statfsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LARGE_ONNX_DEFAULTS, LargeOnnxOptions, writeLargeOnnxModel } from './large-onnx.js';
import { LARGE_TFJS_DEFAULTS, LargeTfjsOptions, writeLargeTfjsModel } from './large-tfjs.js';
import { fmtNum, markdownTable, median, machineInfo } from './stats.js';
import { GeneratedModel, writeVgg16Model } from './vgg16.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const root = path.resolve(here, '..', '..');
const preload = pathToFileURL(path.join(here, 'maxrss-preload.js')).href;
const MiB = 2 ** 20;

const log = (s: string) => process.stderr.write(`${s}\n`);

// ---------------------------------------------------------------- arguments

interface Args {
  dir: string;
  /** The kprune CLI script to measure (default this checkout's bin, dist/cli/kprune.js). */
  cli: string;
  keep: boolean;
  /** The JSON result file. */
  out: string;
  only: Set<CaseId>;
  runs: number;
  withRun: boolean;
  timeoutMs: number;
  onnx: Required<LargeOnnxOptions>;
  tfjs: Required<LargeTfjsOptions>;
}

const USAGE = `usage: node dist/bench/large.js [options]   (npm run bench:large -- [options])

  --dir <folder>           models and outputs go here (default <tmpdir>/kprune-large-bench)
  --cli <main.js>          the kprune CLI to measure, e.g. another checkout's dist/cli/main.js
                           (default this checkout's)
  --keep                   keep the generated models; a later run with the same settings reuses them
  --out <file>             the JSON result (default bench/out/large.json)
  --only <ids>             some of vgg16,onnx,tfjs (default all)
  --runs <n>               runs per operation (default 1)
  --with-run               when the CLI has --no-run, also measure prune without it
  --timeout <seconds>      per run (default 1800)
  --onnx-layers <n>        Conv 3x3 layers of the ONNX model (default ${LARGE_ONNX_DEFAULTS.layers})
  --onnx-channels <n>      their channels (default ${LARGE_ONNX_DEFAULTS.channels})
  --onnx-data-files <n>    external data files (default ${LARGE_ONNX_DEFAULTS.dataFiles})
  --tfjs-layers <n>        Conv2D 3x3 layers of the TF.js model (default ${LARGE_TFJS_DEFAULTS.layers})
  --tfjs-channels <n>      their channels (default ${LARGE_TFJS_DEFAULTS.channels})
  --shard-kib <n>          TF.js shard size (default ${LARGE_TFJS_DEFAULTS.shardBytes / 1024})
`;

type CaseId = 'vgg16' | 'onnx' | 'tfjs';
const CASE_IDS: CaseId[] = ['vgg16', 'onnx', 'tfjs'];

function parseArgs(argv: string[]): Args {
  const a: Args = {
    dir: path.join(os.tmpdir(), 'kprune-large-bench'), cli: path.join(root, 'dist', 'cli', 'kprune.js'), keep: false, out: path.join(root, 'bench', 'out', 'large.json'), only: new Set(CASE_IDS), runs: 1, withRun: false,
    timeoutMs: 30 * 60_000, onnx: { ...LARGE_ONNX_DEFAULTS }, tfjs: { ...LARGE_TFJS_DEFAULTS },
  };
  const int = (name: string, v: string | undefined, min = 1): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} needs an integer >= ${min}, not "${v}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i];
    switch (k) {
      case '--dir': a.dir = path.resolve(v()); break;
      case '--cli': a.cli = path.resolve(v()); break;
      case '--keep': a.keep = true; break;
      case '--out': a.out = path.resolve(v()); break;
      case '--only': {
        const ids = v().split(',').map((s) => s.trim());
        for (const id of ids) if (!CASE_IDS.includes(id as CaseId)) throw new Error(`--only: unknown case "${id}" (cases: ${CASE_IDS.join(', ')})`);
        a.only = new Set(ids as CaseId[]);
        break;
      }
      case '--runs': a.runs = int(k, v()); break;
      case '--with-run': a.withRun = true; break;
      case '--timeout': a.timeoutMs = int(k, v()) * 1000; break;
      case '--onnx-layers': a.onnx.layers = int(k, v()); break;
      case '--onnx-channels': a.onnx.channels = int(k, v()); break;
      case '--onnx-data-files': a.onnx.dataFiles = int(k, v()); break;
      case '--tfjs-layers': a.tfjs.layers = int(k, v()); break;
      case '--tfjs-channels': a.tfjs.channels = int(k, v()); break;
      case '--shard-kib': a.tfjs.shardBytes = int(k, v()) * 1024; break;
      case '-h': case '--help':
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      default: throw new Error(`unknown argument "${k}" (--help lists them)`);
    }
  }
  return a;
}

// ---------------------------------------------------------------- running the CLI

interface RunResult {
  /** The kprune arguments (model and output paths relative to the bench folder). */
  args: string[];
  status: 'ok' | 'failed';
  exitCode: number | null;
  signal: string | null;
  wallMs: number;
  /** Child's peak RSS (KiB), null when it could not report (killed by a signal). */
  maxRssKiB: number | null;
  userMs: number | null;
  systemMs: number | null;
  /** Last lines of stderr when the run failed. */
  error?: string;
  /** Bytes of everything written to the output folder (prune). */
  outputBytes?: number;
  outputFiles?: number;
  /** A few figures from the --json document, when it parsed. */
  report?: { layers?: number; timings?: Record<string, number> };
}

const STDOUT_CAP = 64 * MiB;

function runCli(cli: string, args: string[], timeoutMs: number, rusageFile: string): Promise<Omit<RunResult, 'args' | 'outputBytes' | 'outputFiles'> & { stdout: string }> {
  return new Promise((resolve) => {
    rmSync(rusageFile, { force: true });
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--import', preload, cli, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, KPRUNE_BENCH_RUSAGE_FILE: rusageFile },
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { if (out.length < STDOUT_CAP) out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err = (err + d).slice(-20_000); });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    }, timeoutMs);
    const finish = (exitCode: number | null, signal: string | null, spawnError?: Error) => {
      clearTimeout(timer);
      const wallMs = performance.now() - t0;
      let usage: { maxRssKiB: number; userMs: number; systemMs: number } | null = null;
      try {
        usage = JSON.parse(readFileSync(rusageFile, 'utf8')) as { maxRssKiB: number; userMs: number; systemMs: number };
      } catch {
        usage = null;
      }
      const ok = !spawnError && !timedOut && exitCode === 0;
      const tail = err.trim().split('\n').slice(-8).join('\n');
      const why = spawnError ? `spawn failed: ${spawnError.message}`
        : timedOut ? `timed out after ${timeoutMs / 1000} s`
          : signal ? `killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}`
            : `exit ${exitCode}`;
      resolve({
        status: ok ? 'ok' : 'failed', exitCode, signal, wallMs,
        maxRssKiB: usage?.maxRssKiB ?? null, userMs: usage?.userMs ?? null, systemMs: usage?.systemMs ?? null,
        ...(ok ? {} : { error: tail ? `${why}: ${tail}` : why }),
        stdout: out,
      });
    };
    child.on('error', (e) => finish(null, null, e));
    child.on('close', (code, signal) => finish(code, signal));
  });
}

async function cliHelp(cli: string, command: string, rusageFile: string): Promise<{ text: string; options: string[] }> {
  const r = await runCli(cli, [command, '--help'], 60_000, rusageFile);
  const text = r.stdout;
  return { text, options: [...new Set(text.match(/--[a-z][a-z0-9-]*/g) ?? [])] };
}

async function folderBytes(dir: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  if (!existsSync(dir)) return { bytes, files };
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      const sub = await folderBytes(p);
      bytes += sub.bytes;
      files += sub.files;
    } else if (e.isFile()) {
      bytes += (await fs.stat(p)).size;
      files++;
    }
  }
  return { bytes, files };
}

function reportFigures(stdout: string): RunResult['report'] | undefined {
  try {
    const doc = JSON.parse(stdout) as { layers?: unknown[]; timings?: Record<string, number> };
    return { ...(Array.isArray(doc.layers) ? { layers: doc.layers.length } : {}), ...(doc.timings ? { timings: doc.timings } : {}) };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- cases

interface CaseDef {
  id: CaseId;
  name: string;
  format: 'onnx' | 'tfjs';
  settings: Record<string, unknown>;
  /** Rough bytes the model takes on disk, to check free space first. */
  approxBytes: number;
  generate: (dir: string) => Promise<GeneratedModel>;
  /** File name of the prune output inside its own folder. */
  outputName: string;
}

function caseDefs(a: Args): CaseDef[] {
  const onnxBytes = a.onnx.layers * a.onnx.channels * (a.onnx.channels * 9 + 1) * 4;
  const tfjsBytes = a.tfjs.layers * a.tfjs.channels * (a.tfjs.channels * 9 + 1) * 4;
  const all: CaseDef[] = [
    {
      id: 'vgg16', name: 'vgg16-224 (ONNX, inline)', format: 'onnx', settings: { seed: 16 }, approxBytes: 166e6,
      generate: (dir) => writeVgg16Model(path.join(dir, 'vgg16-bench.onnx')), outputName: 'vgg16-bench.kpruned.onnx',
    },
    {
      id: 'onnx',
      name: `conv3x3 chain ${a.onnx.layers}x${a.onnx.channels} (ONNX, external data, ${a.onnx.dataFiles} file${a.onnx.dataFiles === 1 ? '' : 's'})`,
      format: 'onnx', settings: { ...a.onnx }, approxBytes: onnxBytes,
      generate: (dir) => writeLargeOnnxModel(dir, a.onnx), outputName: 'model.kpruned.onnx',
    },
    {
      id: 'tfjs',
      name: `conv3x3 chain ${a.tfjs.layers}x${a.tfjs.channels} (TF.js LayersModel, ${a.tfjs.shardBytes % MiB === 0 ? `${a.tfjs.shardBytes / MiB} MiB` : `${fmtNum(a.tfjs.shardBytes / 1024, 0)} KiB`} shards)`,
      format: 'tfjs', settings: { ...a.tfjs }, approxBytes: tfjsBytes,
      generate: (dir) => writeLargeTfjsModel(dir, a.tfjs), outputName: 'model.json',
    },
  ];
  return all.filter((c) => a.only.has(c.id));
}

interface Stamp {
  settings: Record<string, unknown>;
  model: GeneratedModel;
  generateMs: number;
}

/** The model from an earlier run with --keep and the same settings, if its files are all there. */
async function reusable(caseDir: string, settings: Record<string, unknown>): Promise<Stamp | null> {
  try {
    const stamp = JSON.parse(await fs.readFile(path.join(caseDir, 'generated.json'), 'utf8')) as Stamp;
    if (JSON.stringify(stamp.settings) !== JSON.stringify(settings)) return null;
    let bytes = 0;
    for (const f of stamp.model.files ?? [stamp.model.path]) bytes += (await fs.stat(f)).size;
    return bytes === stamp.model.bytes ? stamp : null;
  } catch {
    return null;
  }
}

interface CaseResult {
  id: CaseId;
  model: string;
  format: 'onnx' | 'tfjs';
  settings: Record<string, unknown>;
  files: number;
  /** All the model's files together. */
  modelBytes: number;
  weightBytes: number;
  largestTensorBytes: number;
  params: number;
  conv3x3Layers: number;
  generateMs: number;
  reused: boolean;
  measurements: Measurement[];
}

interface Measurement {
  op: 'analyze' | 'prune' | 'prune (with run)';
  runs: RunResult[];
  status: 'ok' | 'failed';
  /** Over the runs that reported it. */
  maxRssKiB: number | null;
  medianWallMs: number;
  outputBytes: number;
  /** maxRSS / (largest tensor + output bytes); null when a run failed. */
  rssPerBound: number | null;
  /** maxRSS / the model's bytes. */
  rssPerModel: number | null;
  /** maxRSS above the CLI's own baseline (KiB). */
  rssAboveBaselineKiB: number | null;
  /** (maxRSS - baseline) / (largest tensor + output bytes): the bound without Node's fixed cost. */
  aboveBaselinePerBound: number | null;
}

function summarize(op: Measurement['op'], runs: RunResult[], c: { largestTensorBytes: number; modelBytes: number }, baselineKiB: number | null): Measurement {
  const rss = runs.map((r) => r.maxRssKiB).filter((x): x is number => x !== null);
  const maxRssKiB = rss.length ? Math.max(...rss) : null;
  const outputBytes = Math.max(0, ...runs.map((r) => r.outputBytes ?? 0));
  const status = runs.every((r) => r.status === 'ok') ? 'ok' : 'failed';
  // A failed run's peak is kept (it says how far it got) but is no figure for the bound.
  const peak = maxRssKiB === null || status === 'failed' ? null : maxRssKiB * 1024;
  return {
    op, runs, status,
    maxRssKiB,
    medianWallMs: median(runs.map((r) => r.wallMs)),
    outputBytes,
    rssPerBound: peak === null ? null : peak / (c.largestTensorBytes + outputBytes),
    rssPerModel: peak === null ? null : peak / c.modelBytes,
    rssAboveBaselineKiB: peak === null || baselineKiB === null ? null : peak / 1024 - baselineKiB,
    aboveBaselinePerBound: peak === null || baselineKiB === null ? null : (peak - baselineKiB * 1024) / (c.largestTensorBytes + outputBytes),
  };
}

// ---------------------------------------------------------------- main

/** The commit of the checkout holding the CLI, and how many of its src/ and cli/ files differ from it. */
function gitState(checkout: string): { commit: string | null; dirtyFiles: number | null } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: checkout, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'cli'], { cwd: checkout, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n').filter(Boolean).length;
    return { commit, dirtyFiles: dirty };
  } catch {
    return { commit: null, dirtyFiles: null };
  }
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const date = new Date();
  const machine = machineInfo();
  const checkout = path.resolve(path.dirname(a.cli), '..', '..'); // <checkout>/dist/cli/main.js
  const version = (() => {
    try {
      return (JSON.parse(readFileSync(path.join(checkout, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  })();
  const git = gitState(checkout);
  const cliName = path.relative(root, a.cli).startsWith('..') ? a.cli : path.relative(root, a.cli);
  const dirExisted = existsSync(a.dir);
  mkdirSync(a.dir, { recursive: true });
  const rusageFile = path.join(a.dir, `rusage-${process.pid}.json`);
  // What this run made: outputs and the rusage file always go; models stay with --keep.
  const scratch: string[] = [rusageFile];
  const models: string[] = [];
  const cleanup = () => {
    for (const p of [...scratch, ...(a.keep ? [] : models)]) rmSync(p, { recursive: true, force: true });
    if (!a.keep && !dirExisted) rmSync(a.dir, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals) => { cleanup(); process.kill(process.pid, sig); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    log(`kprune ${version} large-model bench: ${machine.cpu}, ${machine.cores} cores, ${fmtNum(machine.totalMemGiB)} GiB RAM, Node ${machine.node}; folder ${a.dir}`);
    const pruneHelp = await cliHelp(a.cli, 'prune', rusageFile);
    const analyzeHelp = await cliHelp(a.cli, 'analyze', rusageFile);
    const noRun = { prune: pruneHelp.options.includes('--no-run'), analyze: analyzeHelp.options.includes('--no-run') };
    if (!pruneHelp.text.includes('--shape')) log(`warning: \`kprune prune --help\` did not list --shape; the CLI may be broken right now (runs will record the failure)`);
    log(`CLI: prune ${noRun.prune ? 'has' : 'has no'} --no-run; analyze ${noRun.analyze ? 'has' : 'has no'} --no-run`);

    // The CLI starting and doing nothing: what any run costs before touching a model.
    const base = await runCli(a.cli, ['--version'], 120_000, rusageFile);
    const baselineKiB = base.status === 'ok' ? base.maxRssKiB : null;
    log(`baseline (kprune --version): peak RSS ${baselineKiB === null ? `unknown (${base.error})` : `${fmtNum(baselineKiB / 1024, 0)} MiB`}`);

    const results: CaseResult[] = [];
    for (const c of caseDefs(a)) {
      const caseDir = path.join(a.dir, c.id);
      const outRoot = path.join(a.dir, `out-${c.id}`);
      models.push(caseDir);
      scratch.push(outRoot);
      let stamp = await reusable(caseDir, c.settings);
      const reused = stamp !== null;
      if (!stamp) {
        const free = (() => { try { const s = statfsSync(a.dir); return s.bavail * s.bsize; } catch { return Infinity; } })();
        const need = 2.1 * c.approxBytes;
        if (free < need) throw new Error(`${c.id}: needs about ${fmtNum(need / 1e9, 1)} GB free in ${a.dir} (model + output), has ${fmtNum(free / 1e9, 1)} GB`);
        rmSync(caseDir, { recursive: true, force: true });
        mkdirSync(caseDir, { recursive: true });
        log(`generating ${c.name} in ${caseDir}...`);
        const g0 = performance.now();
        const model = await c.generate(caseDir);
        stamp = { settings: c.settings, model, generateMs: performance.now() - g0 };
        await fs.writeFile(path.join(caseDir, 'generated.json'), `${JSON.stringify(stamp, null, 2)}\n`);
      }
      const m = stamp.model;
      log(`${reused ? 'reusing' : 'generated'} ${c.name}: ${m.files?.length ?? 1} files, ${fmtNum(m.bytes / 1e6)} MB, largest tensor ${fmtNum(m.largestTensorBytes / 1e6)} MB, ${m.conv3x3Layers} 3x3 convs${reused ? '' : ` in ${fmtNum(stamp.generateMs / 1000)} s`}`);

      const rel = (p: string) => path.relative(a.dir, p);
      const ops: { op: Measurement['op']; args: (out: string) => string[] }[] = [
        { op: 'analyze', args: () => ['analyze', m.path, '--json', ...(noRun.analyze ? ['--no-run'] : [])] },
        // --no-run already skips latency, and the CLI refuses --latency-runs beside it (an option that does nothing).
        { op: 'prune', args: (out) => ['prune', m.path, '--shape', 'cross', '-o', out, '--json', ...(noRun.prune ? ['--no-run'] : ['--latency-runs', '0'])] },
      ];
      if (a.withRun && noRun.prune) ops.push({ op: 'prune (with run)', args: (out) => ['prune', m.path, '--shape', 'cross', '-o', out, '--json', '--latency-runs', '0'] });
      const measurements: Measurement[] = [];
      for (const { op, args } of ops) {
        const runs: RunResult[] = [];
        for (let i = 0; i < a.runs; i++) {
          const outDir = path.join(outRoot, `${op.replace(/\W+/g, '-')}-${i + 1}`);
          rmSync(outDir, { recursive: true, force: true });
          const argv = args(path.join(outDir, c.outputName));
          if (op !== 'analyze') mkdirSync(outDir, { recursive: true });
          const r = await runCli(a.cli, argv, a.timeoutMs, rusageFile);
          const written = op === 'analyze' ? null : await folderBytes(outDir);
          rmSync(outDir, { recursive: true, force: true });
          const report = r.status === 'ok' ? reportFigures(r.stdout) : undefined;
          const rec: RunResult = {
            args: argv.map((x) => (path.isAbsolute(x) ? rel(x) : x)),
            status: r.status, exitCode: r.exitCode, signal: r.signal, wallMs: r.wallMs,
            maxRssKiB: r.maxRssKiB, userMs: r.userMs, systemMs: r.systemMs,
            ...(r.error ? { error: r.error } : {}),
            ...(written ? { outputBytes: written.bytes, outputFiles: written.files } : {}),
            ...(report ? { report } : {}),
          };
          runs.push(rec);
          const rss = r.maxRssKiB === null ? 'unknown' : `${fmtNum(r.maxRssKiB / 1024, 0)} MiB`;
          log(`  ${op} run ${i + 1}/${a.runs}: ${r.status}, ${fmtNum(r.wallMs / 1000)} s, peak RSS ${rss}${written ? `, output ${fmtNum(written.bytes / 1e6)} MB in ${written.files} files` : ''}${r.error ? `\n    ${r.error.replace(/\n/g, '\n    ')}` : ''}`);
        }
        measurements.push(summarize(op, runs, { largestTensorBytes: m.largestTensorBytes, modelBytes: m.bytes }, baselineKiB));
      }
      rmSync(outRoot, { recursive: true, force: true });
      if (!a.keep) rmSync(caseDir, { recursive: true, force: true });
      results.push({
        id: c.id, model: c.name, format: c.format, settings: c.settings, files: m.files?.length ?? 1,
        modelBytes: m.bytes, weightBytes: m.weightBytes, largestTensorBytes: m.largestTensorBytes, params: m.params,
        conv3x3Layers: m.conv3x3Layers, generateMs: stamp.generateMs, reused, measurements,
      });
    }
    const totalMs = performance.now() - started;

    // --- Markdown ---
    const mib = (bytes: number) => fmtNum(bytes / MiB, 0);
    const ratio = (x: number | null) => (x === null ? '–' : fmtNum(x, 2));
    const header = `kprune ${version} large-model peak memory — ${machine.cpu}, ${machine.cores} cores, ${fmtNum(machine.totalMemGiB)} GiB RAM, Node ${machine.node}, ${date.toISOString().slice(0, 10)}${git.commit ? `, commit ${git.commit}${git.dirtyFiles ? ` + ${git.dirtyFiles} uncommitted files in src/ and cli/` : ''}` : ''}`;
    const rows = results.flatMap((r) => r.measurements.map((m) => [
      r.model,
      String(r.files),
      mib(r.modelBytes),
      mib(r.largestTensorBytes),
      m.op,
      m.status === 'ok' ? 'ok' : 'FAILED',
      fmtNum(m.medianWallMs / 1000, 1),
      m.maxRssKiB === null ? '–' : fmtNum(m.maxRssKiB / 1024, 0),
      m.op === 'analyze' ? '–' : mib(m.outputBytes),
      ratio(m.rssPerBound),
      ratio(m.rssPerModel),
      m.rssAboveBaselineKiB === null ? '–' : fmtNum(m.rssAboveBaselineKiB / 1024, 0),
      ratio(m.aboveBaselinePerBound),
    ]));
    const table = markdownTable(
      ['Model', 'Files', 'Model MiB', 'Largest tensor MiB', 'Op', 'Status', 'Wall s', 'Peak RSS MiB', 'Output MiB', 'Peak ÷ (largest + output)', 'Peak ÷ model', 'Peak − baseline MiB', '(Peak − baseline) ÷ (largest + output)'],
      rows,
      ['l', 'r', 'r', 'r', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    );
    const failures = results.flatMap((r) => r.measurements.flatMap((m) => m.runs.filter((x) => x.error).map((x) => `${r.id} ${m.op}: ${x.error!.split('\n').slice(-3).join(' / ')}`)));
    const notes = [
      `Each run is \`node ${cliName} <args>\` in a fresh process; peak RSS = that process's process.resourceUsage().maxRSS at exit (bench/maxrss-preload.ts); wall time includes Node start-up.`,
      `prune = \`prune <model> --shape cross -o <out> --json ${noRun.prune ? '--no-run' : '--latency-runs 0'}\`${noRun.prune ? '' : ' (this CLI has no --no-run: prune also loads the input and output into a runtime to measure and verify them)'}; analyze = \`analyze <model> --json\`.`,
      `Baseline: \`kprune --version\` (Node + kprune's imports, no model) peaks at ${baselineKiB === null ? 'unknown' : `${fmtNum(baselineKiB / 1024, 0)} MiB`}. The hardening target: (peak − baseline) ÷ (largest tensor + output) at most about 1 (below 1 when the output is streamed to disk rather than held), for analyze (output 0) a few tensors at most; peak ÷ model far below 1 on the large models. Ratios are left out for failed runs (their peak RSS is kept: how far they got).`,
      `Sizes in MiB (2^20 bytes). Total bench time ${fmtNum(totalMs / 1000, 0)} s.`,
      ...failures.map((f) => `Failed: ${f}`),
    ];
    process.stdout.write(`${header}\n\n${table}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n`);

    // --- JSON ---
    mkdirSync(path.dirname(a.out), { recursive: true });
    const json = {
      tool: { name: 'kprune', version, ...git },
      date: date.toISOString(),
      machine,
      settings: { cli: cliName, runs: a.runs, withRun: a.withRun, timeoutMs: a.timeoutMs, shape: 'cross', cliNoRun: noRun, pruneOptions: pruneHelp.options },
      baseline: { args: ['--version'], maxRssKiB: baselineKiB, ...(base.error ? { error: base.error } : {}) },
      results,
      totalMs,
    };
    await fs.writeFile(a.out, `${JSON.stringify(json, null, 2)}\n`);
    log(`wrote ${path.relative(process.cwd(), a.out)}${a.keep ? `; models kept in ${a.dir}` : ''}`);
  } finally {
    cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:large failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
