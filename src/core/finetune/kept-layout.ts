/**
 * The kept layout of a masked 3x3 weight: per kernel, only its kept positions, in a given order
 * ([Cout, Cin/g, k] for a weight [Cout, Cin/g, 3, 3]). Training graphs take and give weights this
 * way (formats/onnx/training/pieces.ts): nothing is fed, computed or returned for a dropped position,
 * and the optimiser walks contiguous arrays.
 */

/** The kept positions of every kernel of `full` (laid out as [...][9]), in `positions`' order. */
export function packKept(full: Float32Array, positions: readonly number[]): Float32Array {
  const k = positions.length;
  const kernels = full.length / 9;
  if (!Number.isInteger(kernels)) throw new Error('a weight in the kept layout is made of 3x3 kernels');
  const out = new Float32Array(kernels * k);
  for (let j = 0; j < k; j++) {
    const p = positions[j];
    for (let i = 0; i < kernels; i++) out[i * k + j] = full[i * 9 + p];
  }
  return out;
}

/** The 3x3 kernels back from the kept layout: zeros at every position not in `positions`. */
export function unpackKept(kept: Float32Array, positions: readonly number[]): Float32Array {
  const k = positions.length;
  const kernels = kept.length / k;
  if (!Number.isInteger(kernels)) throw new Error(`a kept-layout weight of ${kept.length} values is not made of kernels of ${k} positions`);
  const out = new Float32Array(kernels * 9);
  for (let j = 0; j < k; j++) {
    const p = positions[j];
    for (let i = 0; i < kernels; i++) out[i * 9 + p] = kept[i * k + j];
  }
  return out;
}
