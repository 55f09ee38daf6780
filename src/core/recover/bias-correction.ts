/**
 * Per-channel bias correction after a layer is reconstructed: least squares leaves each output
 * channel's residual with some mean on the calibration rows (the ridge pulls towards the original
 * weights, and the ReLU-aware objective ignores rows the ReLU zeroes), and a constant offset
 * passes unchanged into every later layer. A shift of the channel's bias removes it: `pre` makes
 * the mean of the layer's output match the original's; `relu` makes the mean of what survives the
 * ReLU after it match (a monotone equation in the shift, solved by bisection).
 */

export type BiasCorrection = 'pre' | 'relu';

function mean(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return v.length > 0 ? s / v.length : 0;
}

function reluMean(v: Float32Array, shift: number): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i] + shift;
    if (x > 0) s += x;
  }
  return v.length > 0 ? s / v.length : 0;
}

/**
 * The shift d of one channel's bias such that mean(pred + d) = mean(target) (`pre`), or
 * mean(relu(pred + d)) = mean(relu(target)) (`relu`; 0 when the original's channel never fires on
 * these rows, or the prediction is constant: nothing to match then).
 */
export function channelShift(pred: Float32Array, target: Float32Array, kind: BiasCorrection): number {
  if (pred.length === 0) return 0;
  if (kind === 'pre') return mean(target) - mean(pred);
  const goal = reluMean(target, 0);
  if (!(goal > 0)) return 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < pred.length; i++) {
    lo = Math.min(lo, pred[i]);
    hi = Math.max(hi, pred[i]);
  }
  let tmax = 0;
  for (let i = 0; i < target.length; i++) tmax = Math.max(tmax, target[i]);
  // relu-mean(d) rises from 0 (at d = -hi) without bound; the goal is at most max(target), reached by d = tmax - lo.
  let a = -hi;
  let b = tmax - lo;
  if (!(b > a)) return 0;
  for (let it = 0; it < 50; it++) {
    const m = (a + b) / 2;
    if (reluMean(pred, m) < goal) a = m;
    else b = m;
  }
  return (a + b) / 2;
}

/** One shift per output channel. */
export function biasShifts(pred: Float32Array[], target: Float32Array[], kind: BiasCorrection): Float32Array {
  return Float32Array.from(pred, (p, o) => channelShift(p, target[o], kind));
}
