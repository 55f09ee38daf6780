/**
 * `npm run bench:recover`: how much top-1 accuracy layer-wise reconstruction recovers after kernel
 * reshaping, and what it costs in time and memory.
 *
 * For each bundled Fashion-MNIST model (vgg, resnet, dwsep), each shape (cross, qh, auto at each
 * budget) and each calibration size (256, 512, 1024): one `prune(model, { shape, data, recover:
 * 'reconstruct' })` in a fresh `node dist/bench/worker.js recover ...` process. Every report holds
 * the original's accuracy, the reshaped model's before recovery, and the written (reconstructed)
 * model's, on clean and occluded evaluation images, so one run gives all three.
 *
 * One run per cell: this is an accuracy benchmark (accuracy is deterministic for a seed); the times
 * are single samples, not medians. Prints Markdown on stdout, progress on stderr, and writes
 * everything to bench/out/recover.json.
 *
 *   node dist/bench/recover.js [--eval 10000] [--calib 256,512,1024] [--shapes cross,qh,auto]
 *     [--budgets 0.55,0.6] [--models vgg-fmnist,resnet-fmnist,dwsep-fmnist] [--seed 0]
 *     [--data fashion-mnist] [--json bench/out/recover.json]
 */
import { mkdirSync, mkdtempSync, rmSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AUTO_CANDIDATES, maskCount, namedMask, VERSION } from '../src/index.js';
import { RunRecord, runWorker } from './run-worker.js';
import { fmtNum, markdownTable, machineInfo } from './stats.js';

/** A run that takes longer than this is killed and recorded as failed. */
const RUN_TIMEOUT_MS = 600_000;

/** The goal this bench checks: cross, 512 unlabelled calibration images. */
const GOAL = { shape: 'cross', calib: 512, maxDropPt: 1.0, maxMs: 120_000 };

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const root = path.resolve(here, '..', '..');

const log = (s: string) => process.stderr.write(`${s}\n`);


/** One cell of the matrix. */
interface Case {
  model: string;
  file: string;
  shape: string;
  /** For auto only. */
  budget?: number;
  calib: number;
  /** The budget is below what the smallest auto candidate keeps, so prune must refuse it. */
  expectInfeasible: boolean;
}

interface CaseResult extends Case {
  /** Shape label for tables, e.g. "auto@0.6". */
  label: string;
  run?: RunRecord;
  /** 1-minute load average just before the run: other work on the machine skews the times. */
  loadBefore: number;
  /** A KpruneError from prune, or a crashed/timed-out worker. */
  error?: string;
  /** An error that was not the expected refusal of an infeasible budget. */
  unexpected: boolean;
}


function list(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

function numbers(text: string, what: string): number[] {
  const xs = list(text).map(Number);
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x))) throw new Error(`--${what}: expected numbers separated by commas, got "${text}"`);
  return xs;
}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      eval: { type: 'string', default: '10000' },
      calib: { type: 'string', default: '256,512,1024' },
      shapes: { type: 'string', default: 'cross,qh,auto' },
      budgets: { type: 'string', default: '0.55,0.6' },
      models: { type: 'string', default: 'vgg-fmnist,resnet-fmnist,dwsep-fmnist' },
      seed: { type: 'string', default: '0' },
      data: { type: 'string', default: 'fashion-mnist' },
      json: { type: 'string', default: path.join(root, 'bench', 'out', 'recover.json') },
    },
    strict: true,
  });
  const models = list(values.models).map((m) => {
    const file = m.endsWith('.onnx') ? path.resolve(m) : path.join(root, 'fixtures', 'models', `${m}.onnx`);
    return { name: path.basename(file, '.onnx'), file };
  });
  return {
    evalCount: numbers(values.eval, 'eval')[0],
    calib: numbers(values.calib, 'calib'),
    shapes: list(values.shapes),
    budgets: numbers(values.budgets, 'budgets'),
    models,
    seed: numbers(values.seed, 'seed')[0],
    data: values.data,
    json: path.resolve(values.json),
  };
}

/** Smallest share of 3x3 weights `auto` can keep: every layer at its smallest candidate. */
const MIN_AUTO_FRACTION = Math.min(...AUTO_CANDIDATES.map((s) => maskCount(namedMask(s)))) / 9;

function label(c: Case): string {
  return c.budget === undefined ? c.shape : `${c.shape}@${c.budget}`;
}

/** "/features/features.3/Conv" -> "features.3", "/layer1/conv2/Conv" -> "layer1/conv2". */
function shortLayer(name: string): string {
  const parts = name.replace(/^\//, '').replace(/\/Conv$/, '').split('/');
  if (parts.length >= 2 && parts[1].startsWith(parts[0])) parts.shift();
  return parts.join('/');
}

const pct = (x: number | undefined) => (x === undefined ? '–' : fmtNum(x * 100, 2));
const secs = (ms: number | undefined) => (ms === undefined ? '–' : fmtNum(ms / 1000, 1));
/** Top-1 drop original -> written in percentage points (exact to 0.01 for up to 10^4 samples). */
const dropPt = (orig: number, after: number) => Math.round((orig - after) * 1e4) / 100;

async function main(): Promise<void> {
  const started = performance.now();
  const date = new Date();
  const opts = parseOptions();
  const machine = machineInfo();

  // The matrix. An infeasible auto budget fails the same way at every calibration size (the check
  // is on kept parameters, not on data), so it runs once per model, at the smallest size.
  const cases: Case[] = [];
  for (const m of opts.models) {
    for (const shape of opts.shapes) {
      const budgets: (number | undefined)[] = shape === 'auto' ? opts.budgets : [undefined];
      for (const budget of budgets) {
        const expectInfeasible = budget !== undefined && budget < MIN_AUTO_FRACTION - 1e-12;
        const sizes = expectInfeasible ? [Math.min(...opts.calib)] : opts.calib;
        for (const calib of sizes) cases.push({ model: m.name, file: m.file, shape, budget, calib, expectInfeasible });
      }
    }
  }

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kprune-bench-recover-'));
  const cleanup = () => rmSync(tmp, { recursive: true, force: true });
  const onSignal = (sig: NodeJS.Signals) => { cleanup(); process.kill(process.pid, sig); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results: CaseResult[] = [];
  try {
    log(`kprune bench:recover: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; ${cases.length} prune runs, data ${opts.data}, eval ${opts.evalCount}, seed ${opts.seed}; temp dir ${tmp}`);
    for (const [i, c] of cases.entries()) {
      const outDir = mkdtempSync(path.join(tmp, 'out-'));
      const out = path.join(outDir, path.basename(c.file).replace(/\.onnx$/i, '.kpruned.onnx'));
      const args = ['recover', c.file, out, c.shape, opts.data, String(c.calib), String(opts.evalCount), String(opts.seed)];
      if (c.budget !== undefined) args.push(String(c.budget));
      const r: CaseResult = { ...c, label: label(c), unexpected: false, loadBefore: os.loadavg()[0] };
      const head = `[${i + 1}/${cases.length}] ${c.model} ${label(c)} calib ${c.calib} (load ${fmtNum(r.loadBefore, 1)})`;
      try {
        const run = await runWorker(args, RUN_TIMEOUT_MS);
        r.run = run;
        if (run.error) {
          r.error = `${run.error.code}: ${run.error.message}`;
          r.unexpected = !c.expectInfeasible;
          log(`${head}: prune refused${c.expectInfeasible ? ' (expected)' : ''}: ${r.error}`);
        } else if (c.expectInfeasible) {
          r.unexpected = true;
          r.error = `expected the budget ${c.budget} to be refused (auto keeps at least ${fmtNum(MIN_AUTO_FRACTION, 4)}), but prune accepted it`;
          log(`${head}: ${r.error}`);
        } else {
          const a = run.recover!.accuracy;
          const t = run.timings ?? {};
          log(`${head}: ${secs(run.ms)} s (reconstruct ${secs(t.reconstruct)} s${t.scoreShapes !== undefined ? `, scoreShapes ${secs(t.scoreShapes)} s` : ''}, evaluate ${secs(t.evaluate)} s), `
            + `top-1 ${pct(a.original.clean.top1)} -> reshaped ${pct(a.reshaped.clean.top1)} -> reconstructed ${pct(a.written.clean.top1)}, `
            + `kept ${fmtNum(run.recover!.plan.keptFraction, 3)}, max RSS ${fmtNum(run.maxRssKiB / 1024, 0)} MiB`);
        }
      } catch (e) {
        r.error = e instanceof Error ? e.message : String(e);
        r.unexpected = true;
        log(`${head}: FAILED: ${r.error}`);
      } finally {
        rmSync(outDir, { recursive: true, force: true });
      }
      results.push(r);
    }
  } finally {
    cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  const totalMs = performance.now() - started;

  // --- Goal: cross within 1.0 point of the original top-1, 512 calibration images, < 2 minutes ---
  const goal = opts.models.map((m) => {
    const r = results.find((x) => x.model === m.name && x.shape === GOAL.shape && x.calib === GOAL.calib);
    const a = r?.run?.recover?.accuracy;
    if (!r || !a || r.error) return { model: m.name, measured: false as const, error: r?.error ?? 'not in the measured matrix' };
    const drop = dropPt(a.original.clean.top1!, a.written.clean.top1!);
    const accuracyOk = drop <= GOAL.maxDropPt;
    const timeOk = r.run!.ms < GOAL.maxMs;
    return {
      model: m.name,
      measured: true as const,
      originalTop1: a.original.clean.top1!,
      reconstructedTop1: a.written.clean.top1!,
      dropPt: drop,
      pruneMs: r.run!.ms,
      processMs: r.run!.processMs,
      reconstructMs: r.run!.timings?.reconstruct,
      accuracyOk,
      timeOk,
      pass: accuracyOk && timeOk,
    };
  });

  // --- Markdown ---
  const header = `kprune ${VERSION} recovery benchmark — ${machine.cpu}, ${machine.cores} cores, ${fmtNum(machine.totalMemGiB)} GiB RAM, Node ${machine.node}, ${date.toISOString().slice(0, 10)}`;
  const ok = results.filter((r) => !r.error && r.run?.recover);
  const mainTable = markdownTable(
    ['Model', 'Shape', 'Calib', 'Kept', 'Top-1 orig', 'Top-1 reshaped', 'Top-1 recon', 'Δ pt', 'Agree', 'Occl. top-1 orig', 'Occl. reshaped', 'Occl. recon', 'Occl. agree', 'Prune s', 'Score s', 'Recon s', 'Eval s', 'Peak RSS MiB'],
    results.map((r) => {
      if (r.error || !r.run?.recover) {
        const why = r.expectInfeasible && !r.unexpected ? `refused (any calib): ${r.error}` : `FAILED: ${(r.error ?? '').split('\n')[0]}`;
        return [r.model, r.label, String(r.calib), why, ...Array<string>(14).fill('–')];
      }
      const { accuracy: a, plan } = r.run.recover;
      const t = r.run.timings ?? {};
      return [
        r.model, r.label, String(r.calib), fmtNum(plan.keptFraction, 3),
        pct(a.original.clean.top1), pct(a.reshaped.clean.top1), pct(a.written.clean.top1),
        fmtNum(dropPt(a.original.clean.top1!, a.written.clean.top1!), 2),
        pct(a.written.clean.agreement),
        pct(a.original.occluded?.top1), pct(a.reshaped.occluded?.top1), pct(a.written.occluded?.top1), pct(a.written.occluded?.agreement),
        secs(r.run.ms), secs(t.scoreShapes), secs(t.reconstruct), secs(t.evaluate), fmtNum(r.run.maxRssKiB / 1024, 0),
      ];
    }),
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );

  const autos = ok.filter((r) => r.shape === 'auto');
  const autoTable = autos.length === 0 ? '' : markdownTable(
    ['Model', 'Shape', 'Calib', 'Kept', 'Shapes chosen per 3x3 layer (in model order)'],
    autos.map((r) => {
      const plan = r.run!.recover!.plan;
      return [r.model, r.label, String(r.calib), fmtNum(plan.keptFraction, 3), plan.entries.map((e) => `${shortLayer(e.name)} ${e.shape}`).join(', ')];
    }),
    ['l', 'l', 'r', 'r', 'l'],
  );

  const goalTable = markdownTable(
    ['Model', 'Top-1 orig', `Top-1 ${GOAL.shape}+recon (${GOAL.calib})`, 'Δ pt', `≤ ${fmtNum(GOAL.maxDropPt, 1)} pt`, 'Prune call s', 'Recon s', '< 2 min', 'Goal'],
    goal.map((g) => g.measured
      ? [g.model, pct(g.originalTop1), pct(g.reconstructedTop1), fmtNum(g.dropPt, 2), g.accuracyOk ? 'yes' : 'no', secs(g.pruneMs), secs(g.reconstructMs), g.timeOk ? 'yes' : 'no', g.pass ? '**PASS**' : '**FAIL**']
      : [g.model, '–', '–', '–', '–', '–', '–', '–', `not measured: ${g.error.split('\n')[0]}`]),
    ['l', 'r', 'r', 'r', 'l', 'r', 'r', 'l', 'l'],
  );

  const goalNote = `Goal: "${GOAL.shape} within ${fmtNum(GOAL.maxDropPt, 1)} point of the original top-1 with ${GOAL.calib} unlabelled calibration images in under 2 minutes on this ${machine.cores}-core machine"; time = the whole prune call (evaluation included).`;
  const first = ok[0]?.run?.recover;
  const sum = (f: (r: CaseResult) => number) => ok.reduce((a, r) => a + f(r), 0);
  const evalShare = sum((r) => r.run!.timings?.evaluate ?? 0) / Math.max(1, sum((r) => r.run!.ms));
  const infeasible = !opts.shapes.includes('auto') ? [] : opts.budgets.filter((b) => b < MIN_AUTO_FRACTION - 1e-12);
  const notes = [
    `One prune run per row, each in a fresh Node process (\`node dist/bench/worker.js recover\`): an accuracy benchmark, so times are single samples, not medians. Prune s = the whole \`prune()\` call (module loading excluded); Score s / Recon s / Eval s = its \`scoreShapes\` (auto only), \`reconstruct\` and \`evaluate\` phases from report.timings. Peak RSS = process.resourceUsage().maxRSS of that process.`,
    `Data \`${opts.data}\`, seed ${opts.seed}: calibration ${first?.data?.calibSource ?? '(train split)'} (count per row); evaluation ${first?.data?.evalSource ?? `${opts.evalCount} test images`}. Reconstruction uses the calibration images only (no labels); labels are used only to score.`,
    `Top-1 orig = the input model; reshaped = masked to the shape, no recovery (report.accuracy.reshaped); recon = the written, reconstructed model loaded back from disk (report.accuracy.written). Δ pt = orig − recon in percentage points. Agree = recon's top-1 agreement with the original. Occl. = the same images, ${first?.accuracy.occlusion ?? 'with an occluding patch'}.`,
    `Prune s includes the evaluation itself: 6 passes over ${opts.evalCount} images (original, reshaped, written × clean, occluded), ${fmtNum(100 * evalShare, 0)}% of the summed prune time here; the recovery proper is Recon s (+ Score s for auto).`,
    ...(infeasible.length > 0
      ? [`auto at budget ${infeasible.join(', ')} cannot be met: the smallest \`auto\` candidates (cross, x) keep 5 of 9 positions, so every plan keeps at least ${fmtNum(MIN_AUTO_FRACTION, 4)} of the 3x3 weights, and prune refuses the budget (run once per model, the refusal is the same for every calibration size). auto is measured at ${opts.budgets.filter((b) => !infeasible.includes(b)).join(', ') || '(no feasible budget given)'} instead${opts.budgets.includes(0.6) ? ' (0.6 is the library\'s default budget)' : ''}.`]
      : []),
    goalNote,
    `1-minute load average before each run: ${fmtNum(Math.min(...results.map((r) => r.loadBefore)), 1)}–${fmtNum(Math.max(...results.map((r) => r.loadBefore)), 1)} on ${machine.cores} cores${Math.max(...results.map((r) => r.loadBefore)) > machine.cores * 0.75 ? ' — other work was running, so the times are inflated and noisy (accuracy is not affected)' : ''}.`,
    `Total bench time ${fmtNum(totalMs / 1000, 0)} s for ${results.length} prune runs.`,
  ];
  process.stdout.write(`${header}\n\n${mainTable}\n\n${autoTable ? `${autoTable}\n\n` : ''}${goalTable}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n`);

  // --- JSON ---
  mkdirSync(path.dirname(opts.json), { recursive: true });
  const rel = (f: string) => (path.relative(root, f).startsWith('..') ? f : path.relative(root, f));
  const json = {
    tool: { name: 'kprune', version: VERSION },
    date: date.toISOString(),
    machine,
    settings: {
      data: opts.data, eval: opts.evalCount, calib: opts.calib, seed: opts.seed, shapes: opts.shapes, budgets: opts.budgets,
      recover: 'reconstruct', runsPerCell: 1, minAutoKeptFraction: MIN_AUTO_FRACTION,
    },
    goal: { statement: goalNote, criteria: GOAL, results: goal },
    results: results.map((r) => ({ ...r, file: rel(r.file) })),
    totalMs,
  };
  await fs.writeFile(opts.json, `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${path.relative(process.cwd(), opts.json) || opts.json}`);
  if (results.some((r) => r.unexpected)) {
    log('some runs failed unexpectedly (see the table)');
    process.exitCode = 1;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:recover failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
