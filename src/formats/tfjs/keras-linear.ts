/**
 * The linear layers of a LayersModel that recovery may re-solve downstream of reshaped 3x3 layers
 * (src/core/recover/linear.ts): plain 1x1 Conv2D layers (the pointwise step after a depthwise one in
 * MobileNet-style blocks) and Dense layers without an activation on a 2-D input (a classifier's head
 * after global pooling) that a reshaped layer's output reaches through the plan. Their weights stay
 * in the file's own layout, [1, 1, in, out] or [in, out], which is [in][out]: a transposed linear
 * layer.
 */
import { convKind } from '../../model/conv.js';
import type { LinearLayer } from '../../core/recover/linear.js';
import { opOutputs } from './keras-plan.js';
import type { KerasScan } from './layers.js';
import { TfjsModel, weightFloats } from './read.js';

export function findKerasLinearLayers(model: TfjsModel, scan: KerasScan, reshaped: Set<string>): LinearLayer[] {
  const { plan } = scan;
  // A kernel a layer called twice reads in two places: re-solving it for one call would change the other.
  const calls = new Map<string, number>();
  for (const op of plan.ops) {
    const id = op.conv?.kernelId ?? op.dense?.kernelId;
    if (id !== undefined) calls.set(id, (calls.get(id) ?? 0) + 1);
  }
  const candidates = new Map(scan.pointwise.filter((p) => calls.get(p.kernel.name) === 1).map((p) => [p.op, p]));
  const tainted = new Set<string>();
  const found: LinearLayer[] = [];
  plan.ops.forEach((op, i) => {
    const reached = op.inputs.some((v) => tainted.has(v));
    if (reached || (op.conv && reshaped.has(op.conv.kernelId))) for (const v of opOutputs(op)) tainted.add(v);
    const p = candidates.get(i);
    if (!reached || !p) return;
    // Both store [in][out]: [1, 1, in, out] for a 1x1 Conv2D, [in, out] for Dense.
    const [inChannels, outChannels] = p.kernel.shape.slice(-2);
    const kernel = p.kernel;
    found.push({
      id: kernel.name, name: p.use.node, index: 100_000 + i, order: i, uses: [p.use], outChannels, inChannelsPerGroup: inChannels, group: 1,
      kind: convKind(1, outChannels, inChannels), linear: { kind: p.kind === 'dense' ? 'gemm' : 'conv1x1', transposed: true },
      get weights() {
        return weightFloats(model, kernel)!;
      },
    });
  });
  return found;
}
