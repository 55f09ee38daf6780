/** Running a model over a data set in batches and collecting its first output. */
import { Dataset } from '../data/types.js';
import { OutputSet } from '../report/metrics.js';
import { ModelRunner } from './model-runner.js';

export const DEFAULT_EVAL_BATCH = 64;

export async function collectOutputs(
  runner: ModelRunner,
  data: Dataset,
  weights: Map<string, Float32Array>,
  batchSize = DEFAULT_EVAL_BATCH,
  onBatch?: (done: number, total: number) => void,
): Promise<OutputSet> {
  const per = data.sampleDims.reduce((a, b) => a * b, 1);
  const batch = Math.max(1, Math.min(batchSize, runner.maxBatch));
  const output = runner.outputNames[0];
  let out: Float32Array | null = null;
  let sampleDims: number[] = [];
  for (let start = 0; start < data.count; start += batch) {
    const n = Math.min(batch, data.count - start);
    const x = data.x.subarray(start * per, (start + n) * per);
    const r = (await runner.run(x, [n, ...data.sampleDims], weights, [output])).get(output)!;
    if (!out) {
      sampleDims = r.dims.slice(1);
      out = new Float32Array(data.count * sampleDims.reduce((a, b) => a * b, 1));
    }
    out.set(r.data, (start * out.length) / data.count);
    onBatch?.(start + n, data.count);
  }
  return { data: out ?? new Float32Array(0), sampleDims };
}

/** Calibration batches for recovery: several weight sets run on each batch. */
export function datasetActivationSource(runner: ModelRunner, data: Dataset, batchSize = 32) {
  const per = data.sampleDims.reduce((a, b) => a * b, 1);
  const batch = Math.max(1, Math.min(batchSize, runner.maxBatch));
  return {
    async forEachBatch(
      runs: { weights: Map<string, Float32Array>; fetch: string[] }[],
      visit: (results: Map<string, { dims: number[]; data: Float32Array }>[]) => void,
    ): Promise<void> {
      for (let start = 0; start < data.count; start += batch) {
        const n = Math.min(batch, data.count - start);
        const x = data.x.subarray(start * per, (start + n) * per);
        const results = [];
        for (const run of runs) results.push(await runner.run(x, [n, ...data.sampleDims], run.weights, run.fetch));
        visit(results);
      }
    },
  };
}
