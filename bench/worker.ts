/**
 * One benchmark measurement in a fresh process, so that peak RSS belongs to this one operation:
 *
 *   node dist/bench/worker.js analyze <model.onnx>
 *   node dist/bench/worker.js prune <model.onnx> <out.onnx>
 *   node dist/bench/worker.js baseline            (imports the library, does nothing)
 *   node dist/bench/worker.js recover <model.onnx> <out.onnx> <shape> <data> <calib> <eval> <seed> [budget]
 *       (prune with data and --recover reconstruct; a KpruneError is reported, not thrown)
 *   node dist/bench/worker.js reconstruct <model.onnx> <segments|rerun> <shape> <data> <calib> <seed> [<kprune root>]
 *       (reshape + reconstruct only, no evaluation or writing: the recovery engine's own time; with
 *       a root, that build of kprune's library is used, e.g. an earlier revision for comparison)
 *
 * Prints one line `KPRUNE_BENCH {json}` on stdout: wall ms of the call itself (module loading
 * excluded), CPU ms, and process.resourceUsage().maxRSS (KiB) at the end, i.e. the process peak.
 */
import { analyze, isKpruneError, loadModel, prune, recover, reshape } from '../src/index.js';
import { RESULT_PREFIX, WorkerResult } from './protocol.js';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

async function main(): Promise<void> {
  const [op, file, out, ...rest] = process.argv.slice(2);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let extra: Partial<WorkerResult> = {};
  if (op === 'analyze') {
    const r = await analyze(file);
    extra = { layers: r.layers.length };
  } else if (op === 'prune') {
    if (!out) throw new Error('prune needs an output path');
    // Load, analyze, reshape, write, verify, measure: the latency comparison is a separate question.
    const r = await prune(file, { shape: 'cross', output: out, latencyRuns: 0 });
    extra = {
      layers: r.layers.length,
      timings: r.timings,
      sizeBefore: { bytes: r.before.size.bytes, gzipBytes: r.before.size.gzipBytes },
      sizeAfter: { bytes: r.after.size.bytes, gzipBytes: r.after.size.gzipBytes },
      macsDense: r.before.macs.status === 'measured' ? r.before.macs.dense : null,
      outputFiles: r.output.files,
    };
  } else if (op === 'recover') {
    const [shape, data, calib, evalCount, seed, budget] = rest;
    if (!out || !seed) throw new Error('recover needs <model> <out> <shape> <data> <calib> <eval> <seed> [budget]');
    try {
      const r = await prune(file, {
        shape,
        budget: budget === undefined ? undefined : Number(budget),
        output: out,
        data: { data, calib: Number(calib), eval: Number(evalCount), seed: Number(seed) },
        recover: 'reconstruct',
      });
      if (r.accuracy.status !== 'measured') throw new Error(`accuracy was not measured: ${r.accuracy.reason}`);
      extra = {
        layers: r.layers.length,
        timings: r.timings,
        outputFiles: r.output.files,
        recover: { accuracy: r.accuracy, data: r.data, plan: r.plan, recovery: r.recovery?.layers ?? null },
      };
    } catch (e) {
      if (!isKpruneError(e)) throw e;
      extra = { error: { code: e.code, message: e.message, ...(e.suggestion ? { suggestion: e.suggestion } : {}) } };
    }
  } else if (op === 'reconstruct') {
    const propagation = out as 'segments' | 'rerun';
    const [shape, data, calib, seed, root] = rest;
    const lib = (root ? await import(pathToFileURL(path.join(root, 'dist', 'src', 'index.js')).href) : { loadModel, recover, reshape }) as { loadModel: typeof loadModel; recover: typeof recover; reshape: typeof reshape };
    const t1 = performance.now();
    const model = await lib.loadModel(file);
    const r = await lib.recover(model, lib.reshape(model, shape), { data, calib: Number(calib), eval: 1, seed: Number(seed), propagation, occlusion: 0 });
    extra = { layers: r.layers.length, reconstruct: { layers: r.layers, propagation: r.propagation ?? null, ms: performance.now() - t1 } };
  } else if (op !== 'baseline') {
    throw new Error(`unknown op "${op}"`);
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const result: WorkerResult = {
    op: op as WorkerResult['op'],
    ms,
    userMs: cpu.user / 1000,
    systemMs: cpu.system / 1000,
    maxRssKiB: process.resourceUsage().maxRSS,
    ...extra,
  };
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
