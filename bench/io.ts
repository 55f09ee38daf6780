/**
 * `npm run bench:io`: model I/O against the speed of the disk (issue 15). Generates the
 * VGG-16-shaped ONNX of bench/vgg16.ts with VGG-16's own classifier (138 M float32 weights inline,
 * ~553 MB) in a temp folder, then times side by side, interleaved round by round:
 *
 *   cp            copying the file (the floor), cp + sync (a copy that is on disk, as kprune's is), and
 *                 dd bs=4M (a copy through user space: cp may copy inside the kernel);
 *   startup       kprune --version: Node's start and kprune's imports;
 *   python peer   bench/io_peer.py: onnx.load, numpy mask of every 3x3 kernel (cross), onnx.save;
 *   prune         kprune <m> --shape cross --no-run --no-gzip (the report as JSON on stdout);
 *   analyze       kprune analyze <m> --no-run, and kprune analyze <m> (which runs the model once);
 *   and with --baseline <checkout>, the same two kprune commands of another build (the code before
 *   the rewrite) in the same rounds.
 *
 * Every command runs under /usr/bin/time for its wall time and peak RSS (maxRSS of the process and
 * its children); `sync` runs (untimed) before each, so that no command pays for the dirty pages of
 * the one before. Then one default run (gzip sizes, onnxruntime checks, 5 latency runs) with its
 * timings, to say where its time goes. Prints Markdown tables with the machine and the load average
 * and writes bench/out/io.json. Needs ~2 GB free in the temp folder; everything is deleted at the end.
 *
 *   node dist/bench/io.js [--rounds 3] [--baseline <checkout with dist/>] [--dir <folder>] [--keep]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtNum, machineInfo, markdownTable, median } from './stats.js';
import { writeVgg16Model } from './vgg16.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const root = path.resolve(here, '..', '..');
const log = (s: string) => process.stderr.write(`${s}\n`);
const PYTHON = '/usr/bin/python3';

interface Command {
  id: string;
  label: string;
  argv: string[];
  /** Where it writes (deleted after each run). */
  out?: string;
  /** Its stdout is a kprune report with timings. */
  report?: boolean;
}

interface Sample {
  seconds: number;
  maxRssKiB: number;
  timings?: Record<string, number>;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Runs argv under /usr/bin/time; wall seconds and peak RSS, or throws with its stderr. */
function timed(argv: string[]): Sample & { stdout: string } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', ...argv], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const lines = r.stderr.trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  const [s, k] = last.split(' ').map(Number);
  if (r.status !== 0 || !Number.isFinite(s)) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return { seconds: s, maxRssKiB: k, stdout: r.stdout };
}

function loadAverage(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

async function main(): Promise<void> {
  const rounds = Number(arg('--rounds') ?? 3);
  const baseline = arg('--baseline');
  const keep = process.argv.includes('--keep');
  const dir = arg('--dir') ?? mkdtempSync(path.join(os.tmpdir(), 'kprune-io-bench-'));
  mkdirSync(dir, { recursive: true });
  const fs = statfsSync(dir);
  const free = fs.bavail * fs.bsize;
  if (free < 2.5e9) throw new Error(`${dir}: ${fmtNum(free / 1e9, 2)} GB free, the bench needs ~2.5 GB`);
  const model = path.join(dir, 'vgg16.onnx');
  try {
    if (!existsSync(model)) {
      log(`generating ${model}`);
      await writeVgg16Model(model, 16, 'full');
    }
    const modelBytes = statSync(model).size;
    // The bin a user runs: the bundled command line where the build has one (older builds: main.js).
    const cli = (r: string) => [path.join(r, 'dist', 'cli', 'kprune.js'), path.join(r, 'dist', 'cli', 'main.js')].find((f) => existsSync(f))!;
    const kprune = (r: string, tag: string): Command[] => [
      { id: `prune${tag}`, label: `kprune${tag} --no-run --no-gzip`, argv: ['node', cli(r), model, '--shape', 'cross', '--no-run', '--no-gzip', '-o', path.join(dir, `out${tag}.onnx`), '--json', '-q'], out: path.join(dir, `out${tag}.onnx`), report: true },
      { id: `analyze${tag}`, label: `kprune${tag} analyze --no-run`, argv: ['node', cli(r), 'analyze', model, '--no-run', '--json'] },
      { id: `analyzeRun${tag}`, label: `kprune${tag} analyze (runs once)`, argv: ['node', cli(r), 'analyze', model, '--json'] },
    ];
    const commands: Command[] = [
      { id: 'cp', label: 'cp', argv: ['cp', model, path.join(dir, 'copy.onnx')], out: path.join(dir, 'copy.onnx') },
      // A copy through user space, as every writer here does (cp may copy inside the kernel).
      { id: 'dd', label: 'dd bs=4M', argv: ['dd', `if=${model}`, `of=${path.join(dir, 'copy.onnx')}`, 'bs=4M', 'status=none'], out: path.join(dir, 'copy.onnx') },
      { id: 'cpSync', label: 'cp + sync', argv: ['sh', '-c', `cp "${model}" "${path.join(dir, 'copy.onnx')}" && sync "${path.join(dir, 'copy.onnx')}"`], out: path.join(dir, 'copy.onnx') },
      { id: 'python', label: 'Python peer (onnx + numpy)', argv: [PYTHON, path.join(root, 'bench', 'io_peer.py'), model, path.join(dir, 'peer.onnx')], out: path.join(dir, 'peer.onnx') },
      // Node's start and kprune's imports: the floor of every kprune command.
      { id: 'startup', label: 'kprune --version', argv: ['node', cli(root), '--version'] },
      ...kprune(root, ''),
      ...(baseline ? kprune(path.resolve(baseline), ' (before)') : []),
    ];
    const samples = new Map<string, Sample[]>(commands.map((c) => [c.id, []]));
    const loads: string[] = [loadAverage()];
    for (let round = 1; round <= rounds; round++) {
      for (const c of commands) {
        execFileSync('sync');
        const r = timed(c.argv);
        const sample: Sample = { seconds: r.seconds, maxRssKiB: r.maxRssKiB };
        if (c.report) sample.timings = (JSON.parse(r.stdout) as { timings: Record<string, number> }).timings;
        samples.get(c.id)!.push(sample);
        if (c.out) rmSync(c.out, { force: true });
        log(`round ${round} ${c.label}: ${r.seconds} s, ${fmtNum(r.maxRssKiB / 1024, 0)} MiB (load ${loadAverage()})`);
      }
      loads.push(loadAverage());
    }
    // One default run: gzip sizes, the output loaded and run in onnxruntime, a short latency comparison.
    execFileSync('sync');
    const full = timed(['node', cli(root), model, '--shape', 'cross', '--latency-runs', '5', '-o', path.join(dir, 'full.onnx'), '--json', '-q']);
    rmSync(path.join(dir, 'full.onnx'), { force: true });
    const fullTimings = (JSON.parse(full.stdout) as { timings: Record<string, number> }).timings;
    loads.push(loadAverage());

    const med = (id: string) => median(samples.get(id)!.map((s) => s.seconds));
    const rss = (id: string) => samples.get(id)!.reduce((a, s) => Math.max(a, s.maxRssKiB), 0) * 1024;
    const rows = commands.map((c) => {
      const xs = samples.get(c.id)!.map((s) => s.seconds);
      return [
        c.label,
        `${fmtNum(med(c.id), 2)} s`,
        `${fmtNum(Math.min(...xs), 2)}-${fmtNum(Math.max(...xs), 2)}`,
        `${fmtNum(med(c.id) / med('cp'), 1)}x`,
        `${fmtNum(med(c.id) / med('python'), 2)}x`,
        ['cp', 'cpSync', 'dd', 'startup'].includes(c.id) ? '-' : `${fmtNum(rss(c.id) / 1e6, 0)} MB (${fmtNum(rss(c.id) / modelBytes, 2)}x)`,
      ];
    });
    const phases = (id: string) => {
      const ts = samples.get(id)!.map((s) => s.timings!);
      return Object.keys(ts[0]).map((k) => `${k} ${fmtNum(median(ts.map((t) => t[k])) / 1000, 2)}`).join(', ');
    };
    const m = machineInfo();
    const text = [
      `Model: VGG-16-shaped ONNX, ${fmtNum(modelBytes / 1e6, 0)} MB, 138 M float32 weights inline; ${rounds} rounds, interleaved, \`sync\` before each command.`,
      `Machine: ${m.cpu}, ${m.cores} cores, ${fmtNum(m.totalMemGiB, 0)} GiB, Node ${m.node}, ${m.platform}; load average (1/5/15 min) per round: ${loads.join(' | ')}.`,
      '',
      markdownTable(['command', 'median', 'range (s)', 'vs cp', 'vs Python', 'peak RSS (x model)'], rows, ['l', 'r', 'r', 'r', 'r', 'r']),
      '',
      `kprune --no-run --no-gzip phases (median s): ${phases('prune')}.`,
      ...(baseline ? [`Before the rewrite: ${phases('prune (before)')}.`] : []),
      `Default run (gzip sizes, onnxruntime load and run of the output, 5 latency runs): ${fmtNum(full.seconds, 1)} s, peak ${fmtNum(full.maxRssKiB * 1024 / 1e6, 0)} MB; phases (s): ${Object.entries(fullTimings).map(([k, v]) => `${k} ${fmtNum(v / 1000, 2)}`).join(', ')}.`,
    ].join('\n');
    process.stdout.write(`${text}\n`);
    mkdirSync(path.join(root, 'bench', 'out'), { recursive: true });
    writeFileSync(path.join(root, 'bench', 'out', 'io.json'), JSON.stringify({ machine: m, loads, modelBytes, samples: Object.fromEntries(samples), full: { seconds: full.seconds, maxRssKiB: full.maxRssKiB, timings: fullTimings } }, null, 1));
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
