/**
 * A TF.js model judged in the test itself: model.json and its shards read here and handed to
 * TF.js's own loaders (tf.loadLayersModel / tf.loadGraphModel, which dequantize by themselves), run
 * with predict, and the report's figures computed from the outputs in float64 — without kprune's
 * runners or report/metrics.ts. Also the reshaped-only model: the original's kernels with the mask
 * applied here, as TF.js decodes them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type * as TF from '../../src/runtime/tfjs/tf.js';
import type { Tf } from '../../src/runtime/tfjs/backend.js';

interface ModelJson {
  format: string;
  modelTopology: unknown;
  weightsManifest: { paths: string[]; weights: TF.io.WeightsManifestEntry[] }[];
}

export interface Artifacts {
  kind: 'layers' | 'graph';
  artifacts: TF.io.ModelArtifacts;
}

/** model.json and its shards, as TF.js's loaders want them. */
export function readArtifacts(file: string): Artifacts {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as ModelJson;
  const dir = path.dirname(file);
  const shards = doc.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(path.join(dir, p))));
  const data = Buffer.concat(shards);
  return {
    kind: doc.format === 'graph-model' ? 'graph' : 'layers',
    artifacts: {
      modelTopology: doc.modelTopology as TF.io.ModelArtifacts['modelTopology'],
      format: doc.format,
      weightSpecs: doc.weightsManifest.flatMap((g) => g.weights),
      weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
    },
  };
}

/**
 * The same model with every kernel named in `layers` masked ([3, 3, ...] kernels: the first two
 * dims are the tap), written back as float32: what "reshaped, before any recovery" means.
 */
export async function maskedArtifacts(tf: Tf, a: Artifacts, layers: string[], mask: number[]): Promise<Artifacts> {
  const decoded = tf.io.decodeWeights(a.artifacts.weightData!, a.artifacts.weightSpecs!);
  const named: TF.NamedTensorMap = {};
  for (const spec of a.artifacts.weightSpecs!) {
    const t = decoded[spec.name];
    if (!layers.includes(spec.name)) {
      named[spec.name] = t;
      continue;
    }
    assert.deepEqual(t.shape.slice(0, 2), [3, 3], `${spec.name} is a 3x3 kernel`);
    const v = Float32Array.from(t.dataSync());
    const per = v.length / 9;
    for (let p = 0; p < 9; p++) if (!mask[p]) v.fill(0, p * per, (p + 1) * per);
    named[spec.name] = tf.tensor(v, t.shape, 'float32');
  }
  for (const l of layers) assert.ok(named[l], `the plan's layer ${l} is a weight of the model`);
  const { data, specs } = await tf.io.encodeWeights(named);
  return { kind: a.kind, artifacts: { ...a.artifacts, weightSpecs: specs, weightData: data } };
}

/** Runs the model on NHWC samples with TF.js's own loader and predict; the first output, flat. */
export async function predict(tf: Tf, a: Artifacts, x: Float32Array, sampleDims: number[]): Promise<{ data: Float32Array; sampleDims: number[] }> {
  const handler = tf.io.fromMemory(a.artifacts);
  const model = a.kind === 'layers' ? await tf.loadLayersModel(handler) : await tf.loadGraphModel(handler);
  try {
    const per = sampleDims.reduce((p, d) => p * d, 1);
    const input = tf.tensor(x, [x.length / per, ...sampleDims]);
    const out = model.predict(input) as TF.Tensor | TF.Tensor[];
    const first = Array.isArray(out) ? out[0] : out;
    const data = Float32Array.from(first.dataSync());
    const dims = first.shape.slice(1);
    input.dispose();
    for (const t of Array.isArray(out) ? out : [out]) t.dispose();
    return { data, sampleDims: dims };
  } finally {
    model.dispose();
  }
}

export interface Figures {
  agreement?: number;
  mse: number;
  cosine?: number;
  psnr?: number | null;
}

function argmax(a: Float32Array, at: number, n: number): number {
  let best = at;
  for (let i = at; i < at + n; i++) if (a[i] > a[best]) best = i;
  return best - at;
}

/**
 * Against the original's outputs: agreement of the top-1 class for class scores (one dim), else
 * MSE, cosine and PSNR (range of the original's values). The MSE is given for class scores too:
 * a finer distance than agreement on a few samples.
 */
export function figuresAgainst(out: { data: Float32Array; sampleDims: number[] }, original: { data: Float32Array }): Figures {
  const a = out.data;
  const b = original.data;
  assert.equal(a.length, b.length);
  let se = 0;
  let dot = 0;
  let na = 0;
  let nb = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < a.length; i++) {
    se += (a[i] - b[i]) ** 2;
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
    lo = Math.min(lo, b[i]);
    hi = Math.max(hi, b[i]);
  }
  const mse = se / a.length;
  if (out.sampleDims.length === 1) {
    const classes = out.sampleDims[0];
    let agree = 0;
    for (let s = 0; s < a.length / classes; s++) if (argmax(a, s * classes, classes) === argmax(b, s * classes, classes)) agree++;
    return { agreement: agree / (a.length / classes), mse };
  }
  return { mse, cosine: dot / Math.sqrt(na * nb), psnr: mse > 0 ? 10 * Math.log10((hi - lo) ** 2 / mse) : null };
}

/** The report's figures equal the ones computed here (agreement exactly; distances to `rel`). */
export function assertSameFigures(reported: { agreement?: number; mse?: number; cosine?: number; psnr?: number | null }, mine: Figures, rel: number, what: string): void {
  if (mine.agreement !== undefined) {
    assert.equal(reported.agreement, mine.agreement, `${what}: agreement`);
    return;
  }
  const close = (r: number | undefined | null, m: number | undefined | null, tol: number, name: string) => {
    assert.ok(typeof r === 'number' && typeof m === 'number', `${what}: ${name} ${r} vs ${m}`);
    assert.ok(Math.abs(r - m) <= tol, `${what}: ${name} reported ${r}, computed ${m}`);
  };
  close(reported.mse, mine.mse, rel * mine.mse, 'MSE');
  close(reported.cosine, mine.cosine, rel, 'cosine');
  // PSNR is 10 log10 of a ratio: a relative error e of the MSE is 4.34 e dB.
  close(reported.psnr, mine.psnr, 5 * rel, 'PSNR');
}

/** "010/111/010" as nine 0/1 taps. */
export function maskTaps(mask: string): number[] {
  return [...mask.replace(/\//g, '')].map(Number);
}

export interface Judged {
  /** Figures of each model file against the original, on the report's evaluation samples. */
  written: Figures;
  reshaped: Figures;
  /** Other model files asked for (e.g. reconstruction alone), same samples. */
  others: Figures[];
  evalSource: string;
}

/**
 * Loads the evaluation samples kprune drew (same data, counts and seed: `calib` includes what
 * fine-tuning loaded beside it), runs the original, the reshaped-only model and the written one
 * (and `others`) in TF.js, and computes the figures.
 */
export async function judge(tf: Tf, o: { original: string; written: string; others?: string[]; plan: { layer: string; mask: string }[]; data: string; calib: number; eval: number; seed?: number }): Promise<Judged> {
  const { loadData } = await import('../../src/data/index.js');
  const { loadModel } = await import('../../src/models/index.js');
  const inputDims = (await loadModel(o.original)).inputs[0].dims;
  const split = await loadData(o.data, { inputDims, calib: o.calib, eval: o.eval, seed: o.seed ?? 0 });
  const { x, sampleDims } = split.eval;
  const original = readArtifacts(o.original);
  const masks = new Set(o.plan.map((e) => e.mask));
  assert.equal(masks.size, 1, 'one shape for every layer');
  const reshaped = await maskedArtifacts(tf, original, o.plan.map((e) => e.layer), maskTaps([...masks][0]));
  const ref = await predict(tf, original, x, sampleDims);
  const run = async (a: Artifacts) => figuresAgainst(await predict(tf, a, x, sampleDims), ref);
  const written = await run(readArtifacts(o.written));
  const others: Figures[] = [];
  for (const f of o.others ?? []) others.push(await run(readArtifacts(f)));
  return { written, reshaped: await run(reshaped), others, evalSource: split.eval.source };
}
