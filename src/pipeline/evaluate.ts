/** Running a model over a data set in batches and collecting its first output. */
import { Dataset } from '../model/dataset.js';
import { OutputSet } from '../model/quality.js';
import { ModelRunner } from '../model/runner.js';

export const DEFAULT_EVAL_BATCH = 64;

export async function collectOutputs(
  runner: ModelRunner,
  data: Dataset,
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
    const r = (await runner.run(x, [n, ...data.sampleDims], [output])).get(output)!;
    if (!out) {
      sampleDims = r.dims.slice(1);
      out = new Float32Array(data.count * sampleDims.reduce((a, b) => a * b, 1));
    }
    out.set(r.data, (start * out.length) / data.count);
    onBatch?.(start + n, data.count);
  }
  return { data: out ?? new Float32Array(0), sampleDims };
}

/**
 * Calibration batches for recovery: several weight sets run on each batch. A runner is built per
 * weight set (weights baked in as initializers run about twice as fast in onnxruntime as weights
 * fed as inputs); the original's is kept, others are replaced when a new weight set arrives.
 */
export class RunnerCache {
  private current: { weights: ReadonlyMap<string, Float32Array>; runner: ModelRunner } | null = null;

  constructor(
    private readonly make: (weights: ReadonlyMap<string, Float32Array>) => Promise<ModelRunner>,
    readonly original: ModelRunner,
    private readonly originalWeights: ReadonlyMap<string, Float32Array>,
  ) {}

  async get(weights: ReadonlyMap<string, Float32Array>): Promise<ModelRunner> {
    if (weights === this.originalWeights) return this.original;
    if (this.current?.weights === weights) return this.current.runner;
    await this.current?.runner.release();
    this.current = null;
    this.current = { weights, runner: await this.make(weights) };
    return this.current.runner;
  }

  async release(): Promise<void> {
    await this.current?.runner.release();
    this.current = null;
  }
}

export function datasetActivationSource(cache: RunnerCache, data: Dataset, batchSize = 32) {
  const per = data.sampleDims.reduce((a, b) => a * b, 1);
  const batch = Math.max(1, Math.min(batchSize, cache.original.maxBatch));
  return {
    batch,
    async forEachBatch(
      runs: { weights: ReadonlyMap<string, Float32Array>; fetch: string[] }[],
      visit: (results: Map<string, { dims: number[]; data: Float32Array }>[]) => Promise<void>,
    ): Promise<void> {
      const runners = [];
      for (const run of runs) runners.push(await cache.get(run.weights));
      for (let start = 0; start < data.count; start += batch) {
        const n = Math.min(batch, data.count - start);
        const x = data.x.subarray(start * per, (start + n) * per);
        const results = [];
        for (let i = 0; i < runs.length; i++) results.push(await runners[i].run(x, [n, ...data.sampleDims], runs[i].fetch));
        await visit(results);
      }
    },
  };
}
