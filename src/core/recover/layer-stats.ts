/**
 * Sufficient statistics for reconstructing one 3x3 layer by least squares: for each group, the
 * Gram matrix G = A^T A of the input patches at the kept positions, B = A^T Y against the target
 * outputs (bias removed), and Y^T Y. Every kernel of a layer shares one mask, so one G serves every
 * output channel of its group: one factorisation per group. Accumulated in float64, in blocks of
 * rows handed to a GramEngine.
 */
import { KpruneError } from '../../errors.js';
import { Conv3x3Layer, ConvUse } from '../../model/conv.js';
import type { Activation } from '../../model/runner.js';
import { choleskySolve, cholesky } from './cholesky.js';
import { geometry } from './geometry.js';
import { mulberry32 } from '../../util/random.js';
export type { Activation };

export interface GroupStats {
  /** Columns: input channel c of the group and kept position j at c * K + j. */
  n: number;
  /** Output channels of the group. */
  outs: number;
  /** n x n, row-major, symmetric. */
  gram: Float64Array;
  /** n x outs, row-major. */
  cross: Float64Array;
  /** Per output: sum of squared targets without bias. */
  yy: Float64Array;
}

/** Chooses which output positions of each image become rows (all, or a seeded sample). */
export class RowSampler {
  private readonly next: () => number;
  constructor(readonly perImage: number, seed: number) {
    this.next = mulberry32(seed);
  }

  positions(count: number): Int32Array {
    const all = Int32Array.from({ length: count }, (_, i) => i);
    if (count <= this.perImage) return all;
    for (let i = 0; i < this.perImage; i++) {
      const j = i + Math.floor(this.next() * (count - i));
      const t = all[i];
      all[i] = all[j];
      all[j] = t;
    }
    return all.slice(0, this.perImage).sort();
  }
}

/**
 * The target rows of one batch: for image b, rows offsets[b] .. offsets[b+1]-1, each an output
 * position (oy * wo + ox) and its values over the output channels (row-major). Sampling early lets
 * a source keep only these rows of the original model's output, not the whole tensor.
 */
export interface SampledRows {
  outChannels: number;
  /** [ho, wo] of the output. */
  outDims: [number, number];
  offsets: Int32Array;
  positions: Int32Array;
  values: Float32Array;
}

/** The rows `sampler` picks from each image of y (NCHW), in image order. */
export function sampleRows(y: Activation, sampler: RowSampler): SampledRows {
  const [batch, outChannels, ho, wo] = y.dims.length === 2 ? [...y.dims, 1, 1] : y.dims;
  const picked: Int32Array[] = [];
  const offsets = new Int32Array(batch + 1);
  for (let b = 0; b < batch; b++) {
    picked.push(sampler.positions(ho * wo));
    offsets[b + 1] = offsets[b] + picked[b].length;
  }
  const positions = new Int32Array(offsets[batch]);
  const values = new Float32Array(offsets[batch] * outChannels);
  const plane = ho * wo;
  for (let b = 0; b < batch; b++) {
    positions.set(picked[b], offsets[b]);
    for (let i = 0; i < picked[b].length; i++) {
      const row = offsets[b] + i;
      const pos = picked[b][i];
      for (let oc = 0; oc < outChannels; oc++) values[row * outChannels + oc] = y.data[(b * outChannels + oc) * plane + pos];
    }
  }
  return { outChannels, outDims: [ho, wo], offsets, positions, values };
}

/**
 * Computes one block's contribution to the statistics: with At the n x r patch block (row-major,
 * i.e. A transposed) and Yt the o x r target block, returns G = At At^T (n x n, full) and
 * B = At Yt^T (n x o). Pluggable so that a fast BLAS (onnxruntime's Gemm in float64) can do the
 * heavy part; the default below is plain JavaScript.
 */
export interface GramEngine {
  product(at: Float64Array, yt: Float64Array, n: number, o: number, r: number): Promise<{ gram: Float64Array; cross: Float64Array }>;
  /** a^-1 b for a symmetric positive definite n x n a and an n x o b (row-major); optional. */
  solve?(a: Float64Array, b: Float64Array, n: number, o: number): Promise<Float64Array | null>;
  /** a b for an n x m a and an m x o b (row-major); optional. */
  multiply?(a: Float64Array, b: Float64Array, n: number, m: number, o: number): Promise<Float64Array>;
}

export const jsGramEngine: GramEngine = {
  async product(at, yt, n, o, r) {
    const gram = new Float64Array(n * n);
    const cross = new Float64Array(n * o);
    for (let i = 0; i < n; i++) {
      const ci = i * r;
      for (let j = i; j < n; j++) {
        const cj = j * r;
        let s = 0;
        for (let t = 0; t < r; t++) s += at[ci + t] * at[cj + t];
        gram[i * n + j] = s;
        gram[j * n + i] = s;
      }
      for (let q = 0; q < o; q++) {
        const yq = q * r;
        let s = 0;
        for (let t = 0; t < r; t++) s += at[ci + t] * yt[yq + t];
        cross[i * o + q] = s;
      }
    }
    return { gram, cross };
  },
};

/** Rows gathered per group before a block is handed to the engine (bounded to ~32 MB of patches). */
function blockRows(n: number, groups: number): number {
  return Math.max(64, Math.min(4096, Math.floor((4 << 20) / Math.max(1, n * groups))));
}

export class LayerStats {
  readonly groups: GroupStats[];
  /** Sum of squared targets including bias: the denominator of the relative error. */
  targetSq = 0;
  rows = 0;
  private readonly block: number;
  /** Per group: the pending block of patches (n x block, row-major = A^T) and targets (outs x block). */
  private readonly pendingAt: Float64Array[];
  private readonly pendingYt: Float64Array[];
  private pending = 0;
  /** The output bias of the use being accumulated (for the ReLU-aware pass). */
  private outBias: Float32Array | undefined;
  /** During a ReLU-aware pass: per group, the first solution as outs x n, and the pre-activation statistics to restore. */
  private reluPass: { w0t: Float64Array[]; saved: { cross: Float64Array; yy: Float64Array }[] } | null = null;
  /** During a collect pass: per group the weights as outs x n; per output channel the predictions and targets. */
  private collectPass: { w0t: Float64Array[]; pred: Float32Array[][]; target: Float32Array[][] } | null = null;

  /**
   * `fitBias`: one more unknown per output channel, a constant column: the bias is fitted with the
   * weights (its change is ridge-regularised towards zero) instead of staying exact.
   */
  constructor(readonly layer: Conv3x3Layer, readonly positions: number[], private readonly engine: GramEngine = jsGramEngine, readonly fitBias = false) {
    const n = layer.inChannelsPerGroup * positions.length + (fitBias ? 1 : 0);
    const outs = layer.outChannels / layer.group;
    this.groups = Array.from({ length: layer.group }, () => ({
      n, outs, gram: new Float64Array(n * n), cross: new Float64Array(n * outs), yy: new Float64Array(outs),
    }));
    this.block = blockRows(n, layer.group);
    this.pendingAt = this.groups.map(() => new Float64Array(0));
    this.pendingYt = this.groups.map(() => new Float64Array(0));
  }

  /** Adds one batch: x is the convolution's input (NCHW), y its target output (NCHW). */
  async accumulate(x: Activation, y: Activation, use: ConvUse, sampler: RowSampler): Promise<void> {
    await this.accumulateRows(x, sampleRows(y, sampler), use);
  }

  /**
   * Adds one batch from targets already sampled (see `sampleRows`): x is the convolution's input
   * (NCHW) for the same images, in the same order.
   */
  async accumulateRows(x: Activation, t: SampledRows, use: ConvUse): Promise<void> {
    // A dense layer's [N, F] input is a 1x1 image of F channels.
    const [batch, channels, h, w] = x.dims.length === 2 ? [...x.dims, 1, 1] : x.dims;
    const [ho, wo] = t.outDims;
    const outChannels = t.outChannels;
    if (channels !== this.layer.inChannelsPerGroup * this.layer.group || outChannels !== this.layer.outChannels || batch !== t.offsets.length - 1) {
      throw new Error(`activation dims [${x.dims}] -> [${t.offsets.length - 1}, ${outChannels}, ${ho}, ${wo}] do not fit layer ${this.layer.id}`);
    }
    const geo = geometry(use, h, w);
    const k = this.positions.length;
    const cpg = this.layer.inChannelsPerGroup;
    const bias = use.biasValues;
    this.outBias = bias;
    const offY = this.positions.map((p) => Math.floor(p / 3) * geo.dilH - geo.padTop);
    const offX = this.positions.map((p) => (p % 3) * geo.dilW - geo.padLeft);
    const R = this.block;
    if (this.pendingAt[0].length === 0) {
      this.groups.forEach((st, g) => {
        this.pendingAt[g] = new Float64Array(st.n * R);
        this.pendingYt[g] = new Float64Array(st.outs * R);
      });
    }
    for (let b = 0; b < batch; b++) {
      // A second (ReLU-aware) pass revisits the same rows: they are counted once.
      const counted = this.reluPass === null && this.collectPass === null;
      if (counted) this.rows += t.offsets[b + 1] - t.offsets[b];
      for (let row = t.offsets[b]; row < t.offsets[b + 1]; row++) {
        const pos = t.positions[row];
        const ri = this.pending;
        const oy = Math.floor(pos / wo);
        const ox = pos - oy * wo;
        const baseY = oy * geo.strideH;
        const baseX = ox * geo.strideW;
        for (let g = 0; g < this.groups.length; g++) {
          const st = this.groups[g];
          const at = this.pendingAt[g];
          const yt = this.pendingYt[g];
          for (let c = 0; c < cpg; c++) {
            const plane = ((b * channels) + g * cpg + c) * h * w;
            for (let j = 0; j < k; j++) {
              const iy = baseY + offY[j];
              const ix = baseX + offX[j];
              at[(c * k + j) * R + ri] = iy >= 0 && iy < h && ix >= 0 && ix < w ? x.data[plane + iy * w + ix] : 0;
            }
          }
          if (this.fitBias) at[(st.n - 1) * R + ri] = 1;
          for (let o = 0; o < st.outs; o++) {
            const oc = g * st.outs + o;
            const v = t.values[row * outChannels + oc];
            if (counted) this.targetSq += v * v;
            yt[o * R + ri] = v - (bias ? bias[oc] : 0);
          }
        }
        if (++this.pending === R) await this.flush();
      }
    }
  }

  /** Hands the pending rows to the engine. Call once after the last `accumulate`. */
  async flush(): Promise<void> {
    const r = this.pending;
    if (r === 0) return;
    const R = this.block;
    for (let g = 0; g < this.groups.length; g++) {
      const st = this.groups[g];
      // The engine wants exactly r columns: compact the block when it is not full.
      const at = r === R ? this.pendingAt[g] : compact(this.pendingAt[g], st.n, R, r);
      const yt = r === R ? this.pendingYt[g] : compact(this.pendingYt[g], st.outs, R, r);
      if (this.collectPass) {
        await this.flushCollect(g, at, yt, r);
        continue;
      }
      if (this.reluPass) {
        await this.flushRelu(g, at, yt, r);
        continue;
      }
      const { gram, cross } = await this.engine.product(at, yt, st.n, st.outs, r);
      for (let i = 0; i < gram.length; i++) st.gram[i] += gram[i];
      for (let i = 0; i < cross.length; i++) st.cross[i] += cross[i];
      for (let o = 0; o < st.outs; o++) {
        let s = 0;
        for (let t = 0; t < r; t++) s += yt[o * r + t] * yt[o * r + t];
        st.yy[o] += s;
      }
    }
    this.pending = 0;
  }

  private multiply(a: Float64Array, b: Float64Array, n: number, m: number, o: number): Promise<Float64Array> | Float64Array {
    return this.engine.multiply && Math.max(n, m) >= ENGINE_MIN_N ? this.engine.multiply(a, b, n, m, o) : multiply(a, b, n, m, o);
  }

  /** Per group, `weights` (full layer layout) at this statistics' columns, as outs x n. */
  private transposedWeights(weights: Float32Array, biasDelta: Float32Array | null): Float64Array[] {
    const k = this.positions.length;
    const cpg = this.layer.inChannelsPerGroup;
    return this.groups.map((st, g) => {
      const m = new Float64Array(st.outs * st.n);
      for (let o = 0; o < st.outs; o++) {
        for (let c = 0; c < cpg; c++) for (let j = 0; j < k; j++) m[o * st.n + c * k + j] = weights[this.index(g, o, c, this.positions[j])];
        if (this.fitBias) m[o * st.n + st.n - 1] = biasDelta ? biasDelta[g * st.outs + o] : 0;
      }
      return m;
    });
  }

  /**
   * Starts a pass over the same rows that keeps, per output channel, the prediction of `weights`
   * and the target (both with the layer's bias): what a per-channel bias correction needs (see
   * bias-correction.ts). Nothing is accumulated; `endCollectPass` returns the pairs.
   */
  beginCollectPass(weights: Float32Array, biasDelta: Float32Array | null): void {
    const outs = this.layer.outChannels;
    this.collectPass = {
      w0t: this.transposedWeights(weights, biasDelta),
      pred: Array.from({ length: outs }, () => [] as Float32Array[]),
      target: Array.from({ length: outs }, () => [] as Float32Array[]),
    };
  }

  /** The pairs of the collect pass, per output channel, in row order. */
  endCollectPass(): { pred: Float32Array[]; target: Float32Array[] } {
    const c = this.collectPass;
    if (!c) throw new Error('endCollectPass without beginCollectPass');
    this.collectPass = null;
    const join = (parts: Float32Array[]) => {
      const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    };
    return { pred: c.pred.map(join), target: c.target.map(join) };
  }

  private async flushCollect(g: number, at: Float64Array, yt: Float64Array, r: number): Promise<void> {
    const st = this.groups[g];
    const pass = this.collectPass!;
    const pt = await this.multiply(pass.w0t[g], at, st.outs, st.n, r);
    for (let o = 0; o < st.outs; o++) {
      const oc = g * st.outs + o;
      const b = this.outBias ? this.outBias[oc] : 0;
      const p = new Float32Array(r);
      const y = new Float32Array(r);
      for (let t = 0; t < r; t++) {
        p[t] = pt[o * r + t] + b;
        y[t] = yt[o * r + t] + b;
      }
      pass.pred[oc].push(p);
      pass.target[oc].push(y);
    }
  }

  /**
   * Starts a second pass over the same rows for a layer whose output goes through a ReLU: where
   * the original's output is not positive, any prediction at or below zero is as good as the
   * target (the ReLU makes both 0), so the target becomes min(prediction, 0) there, the
   * prediction being that of `weights` (the first, pre-activation solution). Only the cross terms
   * change (G is the same); solve again after the pass, then `endReluPass`.
   */
  beginReluPass(weights: Float32Array, biasDelta: Float32Array | null): void {
    const w0t = this.transposedWeights(weights, biasDelta);
    const saved = this.groups.map((st) => ({ cross: st.cross, yy: st.yy }));
    for (const st of this.groups) {
      st.cross = new Float64Array(st.cross.length);
      st.yy = new Float64Array(st.yy.length);
    }
    this.reluPass = { w0t, saved };
  }

  /** Back to the pre-activation statistics (for errors), after solving with the ReLU-aware ones. */
  endReluPass(): void {
    if (!this.reluPass) return;
    this.reluPass.saved.forEach((s, g) => {
      this.groups[g].cross = s.cross;
      this.groups[g].yy = s.yy;
    });
    this.reluPass = null;
  }

  private async flushRelu(g: number, at: Float64Array, yt: Float64Array, r: number): Promise<void> {
    const st = this.groups[g];
    // Predictions without bias, outs x r.
    const pt = await this.multiply(this.reluPass!.w0t[g], at, st.outs, st.n, r);
    const tt = new Float64Array(r * st.outs);
    for (let o = 0; o < st.outs; o++) {
      const b = this.outBias ? this.outBias[g * st.outs + o] : 0;
      let s = 0;
      for (let t = 0; t < r; t++) {
        const y = yt[o * r + t];
        const v = y + b > 0 ? y : Math.min(pt[o * r + t], -b);
        tt[t * st.outs + o] = v;
        s += v * v;
      }
      st.yy[o] += s;
    }
    const cross = await this.multiply(at, tt, st.n, r, st.outs);
    for (let i = 0; i < cross.length; i++) st.cross[i] += cross[i];
  }

  /** The statistics restricted to a subset of this one's positions (no new pass over data). */
  select(positions: number[]): LayerStats {
    if (this.fitBias) throw new Error('select() is for statistics without a bias column');
    const sub = new LayerStats(this.layer, positions, this.engine);
    const k = this.positions.length;
    const kk = positions.length;
    const cpg = this.layer.inChannelsPerGroup;
    const map = new Int32Array(cpg * kk);
    for (let c = 0; c < cpg; c++) {
      for (let j = 0; j < kk; j++) {
        const old = this.positions.indexOf(positions[j]);
        if (old < 0) throw new Error(`position ${positions[j]} not in the accumulated statistics`);
        map[c * kk + j] = c * k + old;
      }
    }
    this.groups.forEach((st, g) => {
      const dst = sub.groups[g];
      for (let i = 0; i < dst.n; i++) {
        for (let j = 0; j < dst.n; j++) dst.gram[i * dst.n + j] = st.gram[map[i] * st.n + map[j]];
        for (let o = 0; o < st.outs; o++) dst.cross[i * st.outs + o] = st.cross[map[i] * st.outs + o];
      }
      dst.yy.set(st.yy);
    });
    sub.targetSq = this.targetSq;
    sub.rows = this.rows;
    return sub;
  }

  private index(g: number, o: number, c: number, p: number): number {
    const outs = this.groups[0].outs;
    return ((g * outs + o) * this.layer.inChannelsPerGroup + c) * 9 + p;
  }

  /**
   * Least-squares weights for the kept positions, ridge-regularised towards `prior` (the original
   * weights): (G + lambda I) w = B + lambda w0, lambda = ridge x mean diagonal of G. Dropped
   * positions are zero. Large systems go to the engine's solver when it has one (one solve with
   * every output channel as a right-hand side); small ones, and engines without, use Cholesky here.
   */
  async solve(prior: Float32Array, ridge: number): Promise<Float32Array> {
    return (await this.solveWithBias(prior, ridge)).weights;
  }

  /** As `solve`, and with `fitBias` the change of each output channel's bias (else null). */
  async solveWithBias(prior: Float32Array, ridge: number): Promise<{ weights: Float32Array; biasDelta: Float32Array | null }> {
    const out = new Float32Array(prior.length);
    const biasDelta = this.fitBias ? new Float32Array(this.layer.outChannels) : null;
    const k = this.positions.length;
    const cpg = this.layer.inChannelsPerGroup;
    for (const [g, st] of this.groups.entries()) {
      let trace = 0;
      for (let i = 0; i < st.n; i++) trace += st.gram[i * st.n + i];
      // Finite data and weights can still overflow float32 inside the model (huge values, a layer
      // that explodes): the statistics then hold infinities or NaN, which no ridge can fix.
      if (!Number.isFinite(trace) || st.cross.some((v) => !Number.isFinite(v))) {
        throw new KpruneError('bad-data', `the values reaching layer "${this.layer.name}" on the calibration data are not finite (NaN or infinite)`, {
          node: this.layer.name, suggestion: 'check the data\'s scale (--scale, --mean, --std) against what the model expects',
        });
      }
      let lambda = ridge * (trace > 0 ? trace / st.n : 1);
      const rhsOf = (lam: number) => {
        const rhs = new Float64Array(st.n * st.outs);
        // The bias column (last, with fitBias) is pulled towards no change: its prior is 0.
        if (this.fitBias) for (let o = 0; o < st.outs; o++) rhs[(st.n - 1) * st.outs + o] = st.cross[(st.n - 1) * st.outs + o];
        for (let o = 0; o < st.outs; o++) {
          for (let c = 0; c < cpg; c++) {
            for (let j = 0; j < k; j++) {
              const i = c * k + j;
              rhs[i * st.outs + o] = st.cross[i * st.outs + o] + lam * prior[this.index(g, o, c, this.positions[j])];
            }
          }
        }
        return rhs;
      };
      let x: Float64Array | null = null;
      for (let attempt = 0; attempt < 8 && !x; attempt++) {
        const a = Float64Array.from(st.gram);
        for (let i = 0; i < st.n; i++) a[i * st.n + i] += lambda;
        x = this.engine.solve && st.n >= ENGINE_MIN_N ? await this.engine.solve(a, rhsOf(lambda), st.n, st.outs) : choleskySolveAll(a, rhsOf(lambda), st.n, st.outs);
        if (x && !x.every(Number.isFinite)) x = null;
        if (!x) lambda = Math.max(lambda * 10, 1e-12);
      }
      if (!x) throw new Error(`reconstruction of ${this.layer.id} is numerically singular`);
      for (let o = 0; o < st.outs; o++) {
        for (let c = 0; c < cpg; c++) for (let j = 0; j < k; j++) out[this.index(g, o, c, this.positions[j])] = x[(c * k + j) * st.outs + o];
        if (biasDelta) biasDelta[g * st.outs + o] = x[(st.n - 1) * st.outs + o];
      }
    }
    return { weights: out, biasDelta };
  }

  /**
   * Relative error ||Y - (A w + b)|| / ||Y|| over the accumulated rows, for weights w (full layer
   * layout; only this statistics' positions are read, the others must be zero to be meaningful):
   * per output channel, y.y - 2 w.B + w G w.
   */
  async relativeError(weights: Float32Array, biasDelta: Float32Array | null = null): Promise<number> {
    const k = this.positions.length;
    const cpg = this.layer.inChannelsPerGroup;
    let err = 0;
    for (const [g, st] of this.groups.entries()) {
      const v = new Float64Array(st.n * st.outs);
      for (let o = 0; o < st.outs; o++) {
        for (let c = 0; c < cpg; c++) for (let j = 0; j < k; j++) v[(c * k + j) * st.outs + o] = weights[this.index(g, o, c, this.positions[j])];
        if (this.fitBias) v[(st.n - 1) * st.outs + o] = biasDelta ? biasDelta[g * st.outs + o] : 0;
      }
      const gv = await this.multiply(st.gram, v, st.n, st.n, st.outs);
      for (let o = 0; o < st.outs; o++) {
        let e = st.yy[o];
        for (let i = 0; i < st.n; i++) {
          const vi = v[i * st.outs + o];
          e += vi * (gv[i * st.outs + o] - 2 * st.cross[i * st.outs + o]);
        }
        err += Math.max(e, 0);
      }
    }
    return this.targetSq > 0 ? Math.sqrt(err / this.targetSq) : 0;
  }
}

/** Below this many unknowns a group's algebra stays in JavaScript (an engine call costs more). */
const ENGINE_MIN_N = 64;

/** a (n x m) times b (m x o), row-major. */
function multiply(a: Float64Array, b: Float64Array, n: number, m: number, o: number): Float64Array {
  const out = new Float64Array(n * o);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      const aij = a[i * m + j];
      if (aij === 0) continue;
      for (let q = 0; q < o; q++) out[i * o + q] += aij * b[j * o + q];
    }
  }
  return out;
}

/** a^-1 b for SPD a (overwritten) and b n x o, by Cholesky; null if a is not positive definite. */
function choleskySolveAll(a: Float64Array, b: Float64Array, n: number, o: number): Float64Array | null {
  if (!cholesky(a, n)) return null;
  const col = new Float64Array(n);
  for (let q = 0; q < o; q++) {
    for (let i = 0; i < n; i++) col[i] = b[i * o + q];
    choleskySolve(a, n, col);
    for (let i = 0; i < n; i++) b[i * o + q] = col[i];
  }
  return b;
}

/** The first r columns of each of `rows` rows of a row-major rows x stride matrix. */
function compact(m: Float64Array, rows: number, stride: number, r: number): Float64Array {
  const out = new Float64Array(rows * r);
  for (let i = 0; i < rows; i++) out.set(m.subarray(i * stride, i * stride + r), i * r);
  return out;
}
