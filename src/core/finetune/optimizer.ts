/**
 * The masked optimiser step over plain Float32Arrays, for engines that hand back gradients (the
 * onnxruntime training graph). Semantics are the TF.js path's (runtime/onnx-tfjs/trainer.ts, which
 * uses tf.train.adam / momentum / sgd): the gradient is masked first, so dropped positions get no
 * update and their Adam moments stay zero, and the mask is applied to the weights again after the
 * update, so dropped positions are exactly zero after every step whatever the arithmetic does.
 *
 * Adam as TF.js writes it: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * w -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), with eps = 1e-7 (TF.js's float32
 * epsilon). Momentum: a = mu a + g; w -= lr a. SGD: w -= lr g.
 *
 * A weight given in the kept layout (core/finetune/kept-layout.ts; its mask 'kept') holds kept
 * positions only: every element trains, nothing is zeroed. With Adam such weights, their moments
 * and a gradient buffer move into one WebAssembly memory (adam-wasm.ts, SIMD), where the update runs
 * four at a time: the arrays to feed and read are then `weightsOf(name)`, not the ones given.
 *
 * Adam's update is computed in float32, each operation rounded (Math.fround here, float32 lanes in
 * the WebAssembly kernel: the same values bit for bit), as TF.js's float32 kernels compute it.
 */
import { FULL_MASK, Mask, maskHas, maskPositions } from '../lattice.js';
import { AdamArena } from './adam-wasm.js';

export type OptimizerKind = 'adam' | 'sgd';

export interface MaskedOptimizerOptions {
  kind: OptimizerKind;
  /** SGD momentum (0: plain SGD). */
  momentum: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

/** A weight's mask, or 'kept': the weight is in the kept layout, every element kept. */
export type SlotMask = Mask | 'kept';

interface Slot {
  weights: Float32Array;
  /** Where the slot's arrays live in the WebAssembly arena, if they do. */
  arena?: number;
  /** 1 where the position is kept, 0 where dropped, per element (null: every element). */
  keep: Uint8Array | null;
  /** The indices of the kept elements, ascending (null: every element), and the dropped positions within a kernel. */
  kept: Int32Array | null;
  dropped: Int32Array;
  m: Float32Array;
  v: Float32Array;
}

/** Per-element keep flags of a weight laid out as [...][9] kernels (position = index mod 9). */
export function keepFlags(length: number, mask: Mask): Uint8Array {
  const keep = new Uint8Array(length);
  for (let i = 0; i < length; i++) keep[i] = maskHas(mask, i % 9) ? 1 : 0;
  return keep;
}

export class MaskedOptimizer {
  private readonly slots = new Map<string, Slot>();
  /** b1^t and b2^t as TF.js keeps them: float32 scalars multiplied by float32 b each step. */
  private acc1 = 0;
  private acc2 = 0;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly arena: AdamArena | null = null;

  /**
   * `weights` are updated in place, except kept-layout weights under Adam, copied into the
   * WebAssembly arena (`weightsOf`); `masks` by the same names. `wasm: false` keeps every update
   * in JS (the arena is used where WebAssembly SIMD is there and the weights fit in 4 GiB).
   */
  constructor(weights: ReadonlyMap<string, Float32Array>, masks: ReadonlyMap<string, SlotMask>, private readonly o: MaskedOptimizerOptions & { wasm?: boolean }) {
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.acc1 = Math.fround(this.beta1);
    this.acc2 = Math.fround(this.beta2);
    this.epsilon = o.epsilon ?? 1e-7;
    const needsV = o.kind === 'adam';
    const needsM = o.kind === 'adam' || o.momentum > 0;
    const moments = (n: number) => ({ m: new Float32Array(needsM ? n : 0), v: new Float32Array(needsV ? n : 0) });
    // Kept-layout weights under Adam go to the WebAssembly arena if it opens: their moments are
    // made there, or below in JS if it does not.
    const toArena = o.kind === 'adam' && o.wasm !== false;
    for (const [name, w] of weights) {
      const mask = masks.get(name);
      if (mask === undefined) throw new Error(`no mask for trainable weight "${name}"`);
      if (mask === 'kept') {
        this.slots.set(name, { weights: w, keep: null, kept: null, dropped: new Int32Array(0), ...moments(toArena ? 0 : w.length) });
        continue;
      }
      if (w.length % 9 !== 0) throw new Error(`trainable weight "${name}" is not made of 3x3 kernels`);
      const keep = keepFlags(w.length, mask);
      let count = 0;
      for (let i = 0; i < keep.length; i++) count += keep[i];
      const kept = new Int32Array(count);
      for (let i = 0, j = 0; i < keep.length; i++) if (keep[i]) kept[j++] = i;
      this.slots.set(name, {
        weights: w,
        keep,
        kept,
        dropped: Int32Array.from(maskPositions(FULL_MASK ^ mask)),
        ...moments(w.length),
      });
    }
    const inArena = toArena ? [...this.slots.values()].filter((s) => !s.kept) : [];
    this.arena = inArena.length > 0 ? AdamArena.open(inArena.map((s) => s.weights.length)) : null;
    inArena.forEach((s, k) => {
      if (!this.arena) {
        Object.assign(s, moments(s.weights.length));
        return;
      }
      const w = this.arena.array(k, 0);
      w.set(s.weights);
      [s.weights, s.m, s.v, s.arena] = [w, this.arena.array(k, 2), this.arena.array(k, 3), k];
    });
  }

  /** The array the optimiser updates for this weight (feed it, read it; it changes in place). */
  weightsOf(name: string): Float32Array {
    const s = this.slots.get(name);
    if (!s) throw new Error(`no trainable weight "${name}"`);
    return s.weights;
  }

  /** Whether Adam runs in WebAssembly for some weights (for reports and tests). */
  get inWasm(): boolean {
    return this.arena !== null;
  }

  /** One step with these gradients (by weight name, each the weight's length). */
  step(grads: ReadonlyMap<string, Float32Array>, lr: number): void {
    // TF.js's constants as float32 (0.999 is 0.99900001287 there; 1 - 0.999 is rounded from the
    // double): the update agrees with tf.train.adam to float32 rounding, not 6e-6.
    const f = Math.fround;
    const [b1, b2, eps] = [f(this.beta1), f(this.beta2), this.epsilon];
    const [a1, a2] = [f(1 - this.beta1), f(1 - this.beta2)];
    const c1 = f(1 - this.acc1);
    const c2 = f(1 - this.acc2);
    this.acc1 = f(this.acc1 * b1);
    this.acc2 = f(this.acc2 * b2);
    // lr (m / c1) / (sqrt(v / c2) + eps) as (lr / c1) m / (sqrt(v) / sqrt(c2) + eps): one division
    // and one square root per weight instead of three and one (the JS loop in float64 took 0.6x the
    // time on 6.2 M weights).
    const step = f(lr / c1);
    const root = f(1 / Math.sqrt(c2));
    const e = f(eps);
    for (const [name, s] of this.slots) {
      const g = grads.get(name);
      if (!g || g.length !== s.weights.length) throw new Error(`no gradient of the right size for "${name}"`);
      const { weights: w, keep, kept, dropped, m, v } = s;
      if (this.o.kind === 'adam' && s.arena !== undefined) {
        this.arena!.array(s.arena, 1).set(g);
        this.arena!.step(s.arena, { b1, b2, a1, a2, step, root, eps: e });
        continue;
      }
      // One loop per rule (the rule chosen once, not per element): the step is a tight loop over
      // typed arrays.
      if (this.o.kind === 'adam' && !kept) {
        // The kept layout: every element, in order. (The same body as the loop below, on purpose:
        // one loop with `i = kept ? kept[k] : k` took 2.1x the time here and 1.4x there, 6.1 M weights.)
        for (let i = 0; i < w.length; i++) {
          const gi = g[i];
          const mi = f(f(b1 * m[i]) + f(a1 * gi));
          const vi = f(f(b2 * v[i]) + f(a2 * f(gi * gi)));
          m[i] = mi;
          v[i] = vi;
          w[i] = f(w[i] - f(f(step * mi) / f(f(f(Math.sqrt(vi)) * root) + e)));
        }
      } else if (this.o.kind === 'adam' && kept) {
        // Over the kept indices (no branch; the moments rounded to float32 as their arrays store
        // them, so the arithmetic is the same): 0.5-0.7x the time of a loop over every element
        // testing a flag (ResNet-18's 11 M weights, 6.2 M kept), then the dropped positions zeroed.
        for (let k = 0; k < kept.length; k++) {
          const i = kept[k];
          const gi = g[i];
          const mi = f(f(b1 * m[i]) + f(a1 * gi));
          const vi = f(f(b2 * v[i]) + f(a2 * f(gi * gi)));
          m[i] = mi;
          v[i] = vi;
          w[i] = f(w[i] - f(f(step * mi) / f(f(f(Math.sqrt(vi)) * root) + e)));
        }
        for (let base = 0; base < w.length; base += 9) for (let j = 0; j < dropped.length; j++) w[base + dropped[j]] = 0;
      } else if (!keep) {
        const mu = this.o.momentum;
        if (mu > 0) {
          for (let i = 0; i < w.length; i++) {
            m[i] = mu * m[i] + g[i];
            w[i] -= lr * m[i];
          }
        } else {
          for (let i = 0; i < w.length; i++) w[i] -= lr * g[i];
        }
      } else if (this.o.momentum > 0) {
        const mu = this.o.momentum;
        for (let i = 0; i < w.length; i++) {
          if (!keep[i]) {
            w[i] = 0;
            continue;
          }
          m[i] = mu * m[i] + g[i];
          w[i] -= lr * m[i];
        }
      } else {
        for (let i = 0; i < w.length; i++) w[i] = keep[i] ? w[i] - lr * g[i] : 0;
      }
    }
  }
}
