/**
 * Sufficient statistics for reconstructing one 3x3 layer by least squares: for each group, the
 * Gram matrix G = A^T A of the input patches at the kept positions, B = A^T Y against the target
 * outputs (bias removed), and Y^T Y. Every kernel of a layer shares one mask, so one G serves every
 * output channel of its group: one factorisation per group. Accumulated in float64.
 */
import { Conv3x3Layer, ConvUse } from '../conv.js';
import { choleskySolve, cholesky } from './cholesky.js';
import { geometry } from './geometry.js';

export interface Activation {
  dims: number[];
  data: Float32Array;
}

export interface GroupStats {
  /** Columns: input channel c of the group and kept position j at c * K + j. */
  n: number;
  /** Output channels of the group. */
  outs: number;
  /** n x n, row-major; accumulated in the upper triangle, mirrored by `symmetrize`. */
  gram: Float64Array;
  /** n x outs, row-major. */
  cross: Float64Array;
  /** Per output: sum of squared targets without bias. */
  yy: Float64Array;
}

/** Chooses which output positions of each image become rows (all, or a seeded sample). */
export class RowSampler {
  private state: number;
  constructor(readonly perImage: number, seed: number) {
    this.state = seed >>> 0;
  }

  private next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
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

const BLOCK = 256;

export class LayerStats {
  readonly groups: GroupStats[];
  /** Sum of squared targets including bias: the denominator of the relative error. */
  targetSq = 0;
  rows = 0;
  private symmetric = false;

  constructor(readonly layer: Conv3x3Layer, readonly positions: number[]) {
    const n = layer.inChannelsPerGroup * positions.length;
    const outs = layer.outChannels / layer.group;
    this.groups = Array.from({ length: layer.group }, () => ({
      n, outs, gram: new Float64Array(n * n), cross: new Float64Array(n * outs), yy: new Float64Array(outs),
    }));
  }

  /** Adds one batch: x is the convolution's input (NCHW), y its target output (NCHW). */
  accumulate(x: Activation, y: Activation, use: ConvUse, sampler: RowSampler): void {
    const [batch, channels, h, w] = x.dims;
    const [, outChannels, ho, wo] = y.dims;
    if (channels !== this.layer.inChannelsPerGroup * this.layer.group || outChannels !== this.layer.outChannels) {
      throw new Error(`activation dims [${x.dims}] -> [${y.dims}] do not fit layer ${this.layer.id}`);
    }
    this.symmetric = false;
    const geo = geometry(use, h, w);
    const k = this.positions.length;
    const cpg = this.layer.inChannelsPerGroup;
    const bias = use.biasValues;
    const offY = this.positions.map((p) => Math.floor(p / 3) * geo.dilH - geo.padTop);
    const offX = this.positions.map((p) => (p % 3) * geo.dilW - geo.padLeft);
    const cols = new Float64Array(this.groups[0].n * BLOCK);
    const ys = new Float64Array(this.groups[0].outs * BLOCK);
    for (let b = 0; b < batch; b++) {
      const rows = sampler.positions(ho * wo);
      this.rows += rows.length;
      for (let g = 0; g < this.groups.length; g++) {
        const st = this.groups[g];
        for (let start = 0; start < rows.length; start += BLOCK) {
          const r = Math.min(BLOCK, rows.length - start);
          for (let ri = 0; ri < r; ri++) {
            const pos = rows[start + ri];
            const oy = Math.floor(pos / wo);
            const ox = pos - oy * wo;
            const baseY = oy * geo.strideH;
            const baseX = ox * geo.strideW;
            for (let c = 0; c < cpg; c++) {
              const plane = ((b * channels) + g * cpg + c) * h * w;
              for (let j = 0; j < k; j++) {
                const iy = baseY + offY[j];
                const ix = baseX + offX[j];
                cols[(c * k + j) * r + ri] = iy >= 0 && iy < h && ix >= 0 && ix < w ? x.data[plane + iy * w + ix] : 0;
              }
            }
            for (let o = 0; o < st.outs; o++) {
              const oc = g * st.outs + o;
              const t = y.data[((b * outChannels) + oc) * ho * wo + pos];
              this.targetSq += t * t;
              ys[o * r + ri] = t - (bias ? bias[oc] : 0);
            }
          }
          addBlock(st, cols, ys, r);
        }
      }
    }
  }

  private symmetrize(): void {
    if (this.symmetric) return;
    for (const st of this.groups) {
      for (let i = 0; i < st.n; i++) for (let j = i + 1; j < st.n; j++) st.gram[j * st.n + i] = st.gram[i * st.n + j];
    }
    this.symmetric = true;
  }

  /** The statistics restricted to a subset of this one's positions (no new pass over data). */
  select(positions: number[]): LayerStats {
    this.symmetrize();
    const sub = new LayerStats(this.layer, positions);
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
    sub.symmetric = true;
    return sub;
  }

  private index(g: number, o: number, c: number, p: number): number {
    const outs = this.groups[0].outs;
    return ((g * outs + o) * this.layer.inChannelsPerGroup + c) * 9 + p;
  }

  /**
   * Least-squares weights for the kept positions, ridge-regularised towards `prior` (the original
   * weights): (G + lambda I) w = B + lambda w0, lambda = ridge x mean diagonal of G. Dropped
   * positions are zero.
   */
  solve(prior: Float32Array, ridge: number): Float32Array {
    this.symmetrize();
    const out = new Float32Array(prior.length);
    const k = this.positions.length;
    const cpg = this.layer.inChannelsPerGroup;
    this.groups.forEach((st, g) => {
      let trace = 0;
      for (let i = 0; i < st.n; i++) trace += st.gram[i * st.n + i];
      let lambda = ridge * (trace > 0 ? trace / st.n : 1);
      let l = new Float64Array(0);
      for (let attempt = 0; attempt < 8; attempt++) {
        l = Float64Array.from(st.gram);
        for (let i = 0; i < st.n; i++) l[i * st.n + i] += lambda;
        if (cholesky(l, st.n)) break;
        lambda = Math.max(lambda * 10, 1e-12);
        if (attempt === 7) throw new Error(`reconstruction of ${this.layer.id} is numerically singular`);
      }
      const rhs = new Float64Array(st.n);
      for (let o = 0; o < st.outs; o++) {
        for (let c = 0; c < cpg; c++) {
          for (let j = 0; j < k; j++) {
            const i = c * k + j;
            rhs[i] = st.cross[i * st.outs + o] + lambda * prior[this.index(g, o, c, this.positions[j])];
          }
        }
        choleskySolve(l, st.n, rhs);
        for (let c = 0; c < cpg; c++) for (let j = 0; j < k; j++) out[this.index(g, o, c, this.positions[j])] = rhs[c * k + j];
      }
    });
    return out;
  }

  /**
   * Relative error ||Y - (A w + b)|| / ||Y|| over the accumulated rows, for weights w (full layer
   * layout; only this statistics' positions are read, the others must be zero to be meaningful).
   */
  relativeError(weights: Float32Array): number {
    this.symmetrize();
    const k = this.positions.length;
    const cpg = this.layer.inChannelsPerGroup;
    let err = 0;
    const v = new Float64Array(this.groups[0].n);
    this.groups.forEach((st, g) => {
      for (let o = 0; o < st.outs; o++) {
        for (let c = 0; c < cpg; c++) for (let j = 0; j < k; j++) v[c * k + j] = weights[this.index(g, o, c, this.positions[j])];
        let e = st.yy[o];
        for (let i = 0; i < st.n; i++) {
          if (v[i] === 0) continue;
          e -= 2 * v[i] * st.cross[i * st.outs + o];
          let gi = 0;
          const row = i * st.n;
          for (let j = 0; j < st.n; j++) gi += st.gram[row + j] * v[j];
          e += v[i] * gi;
        }
        err += Math.max(e, 0);
      }
    });
    return this.targetSq > 0 ? Math.sqrt(err / this.targetSq) : 0;
  }
}

/** G += C^T C (upper triangle), B += C^T Y, yy += diag(Y^T Y), for a column-major block of r rows. */
function addBlock(st: GroupStats, cols: Float64Array, ys: Float64Array, r: number): void {
  const n = st.n;
  for (let i = 0; i < n; i++) {
    const ci = i * r;
    const row = i * n;
    for (let j = i; j < n; j++) {
      const cj = j * r;
      let s = 0;
      for (let t = 0; t < r; t++) s += cols[ci + t] * cols[cj + t];
      st.gram[row + j] += s;
    }
    for (let o = 0; o < st.outs; o++) {
      const yo = o * r;
      let s = 0;
      for (let t = 0; t < r; t++) s += cols[ci + t] * ys[yo + t];
      st.cross[i * st.outs + o] += s;
    }
  }
  for (let o = 0; o < st.outs; o++) {
    const yo = o * r;
    let s = 0;
    for (let t = 0; t < r; t++) s += ys[yo + t] * ys[yo + t];
    st.yy[o] += s;
  }
}
