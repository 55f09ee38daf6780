/**
 * ONNX `auto_pad` SAME_UPPER / SAME_LOWER (the Conv and pooling spec): the output keeps
 * ceil(input / stride) positions per axis, and the total padding that needs is split in two, the
 * odd one at the end (UPPER) or at the beginning (LOWER). One place for the executor and the
 * training graph, which must pad alike.
 */
export function samePads(upper: boolean, inSize: number[], kernel: number[], strides: number[], dilations: number[]): number[] {
  const begin: number[] = [];
  const end: number[] = [];
  for (let i = 0; i < inSize.length; i++) {
    const out = Math.ceil(inSize[i] / strides[i]);
    const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - inSize[i]);
    const small = Math.floor(total / 2);
    begin.push(upper ? small : total - small);
    end.push(upper ? total - small : small);
  }
  return [...begin, ...end];
}
