/** Turning per-layer layout requests into ONNX graph edits (see decompose.ts and write.ts). */
import { Conv3x3Layer } from '../../model/conv.js';
import { Layout, LayoutOutcome } from '../../model/layout.js';
import { FULL_MASK, maskCount } from '../../core/lattice.js';
import type { LayoutRequest } from '../../model/loaded-model.js';
import { decomposeConv, sparseConstant } from './decompose.js';
import { respectsMask } from '../../core/reshape.js';
import { OnnxModel } from './read.js';
import { GraphEdits, emptyGraphEdits } from './write.js';
import { minOf, pushAll } from '../../util/arrays.js';


/** One slot for the makers of one set of edits: a layer's pieces are written one after the other. */
interface LastWeights {
  id: string | null;
  values: Float32Array | null;
}

function lastOf(slot: LastWeights, id: string, weights: ReadonlyMap<string, Float32Array>, layer: Conv3x3Layer): () => Float32Array {
  return () => {
    if (slot.id !== id || !slot.values) {
      slot.values = null;
      slot.values = weights.get(id) ?? layer.weights;
      slot.id = id;
    }
    return slot.values;
  };
}

function defaultOpset(model: OnnxModel): number {
  return model.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 1;
}

/**
 * Graph edits for the requested layouts. `weights` are the final values by layer id (zero outside
 * each mask). A layer whose layout cannot be applied stays masked, with the reason in its outcome.
 */
export function layoutEdits(
  model: OnnxModel,
  layers: Conv3x3Layer[],
  weights: ReadonlyMap<string, Float32Array>,
  requests: Map<string, LayoutRequest>,
): { edits: GraphEdits; outcomes: LayoutOutcome[]; masked: Set<string> } {
  const edits = emptyGraphEdits();
  const outcomes: LayoutOutcome[] = [];
  const stillMasked = new Set<string>();
  const nodes = model.graph.node ?? [];
  const nodeIndex = new Map(nodes.map((n, i) => [n.name || `${n.opType}#${i}`, i]));
  const made = new Set<string>();
  const slot: LastWeights = { id: null, values: null };
  const opset = defaultOpset(model);
  const graphInputs = new Set((model.graph.input ?? []).map((i) => i.name ?? ''));
  for (const layer of layers) {
    const req = requests.get(layer.id) ?? { layout: 'masked' as Layout, mask: FULL_MASK };
    const w = weights.get(layer.id) ?? layer.weights;
    const ref = model.constants.get(layer.id)!;
    const masked = (note?: string): void => {
      stillMasked.add(layer.id);
      outcomes.push({ layer: layer.id, requested: req.layout, applied: 'masked', ...(note ? { note } : {}), storedWeights: w.length });
    };
    if (req.layout === 'masked') {
      masked();
      continue;
    }
    if (!respectsMask(w, req.mask)) {
      masked('weights are not zero outside the mask');
      continue;
    }
    if (req.layout === 'sparse') {
      // Constant's sparse_value came with opset 11.
      if (opset < 11) {
        masked(`a sparse Constant needs opset 11 or later (the model has ${opset})`);
        continue;
      }
      if (graphInputs.has(layer.id)) {
        masked('the weight is also a graph input, which a Constant node cannot feed');
        continue;
      }
      if (ref.origin.kind === 'constant') {
        const at = nodes.findIndex((n) => n.opType === 'Constant' && n.output?.[0] === layer.id);
        edits.replaceNodes.set(at, [sparseConstant(layer.id, nodes[at].name ?? '', ref.dims, w, ref.dataType)]);
      } else {
        // Before the first node that reads it, so the graph stays in topological order.
        const first = minOf(layer.uses.map((u) => nodeIndex.get(u.node) ?? nodes.length));
        edits.dropInitializers.add(layer.id);
        edits.insertBefore.set(first, [...(edits.insertBefore.get(first) ?? []), sparseConstant(layer.id, `${layer.id}/kp_sparse`, ref.dims, w, ref.dataType)]);
      }
      const nnz = w.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0);
      outcomes.push({ layer: layer.id, requested: 'sparse', applied: 'sparse', note: `Constant sparse_value: ${nnz} values + ${nnz} int64 indices`, storedWeights: nnz });
      continue;
    }
    // decomposed: every use must decompose, or the layer stays masked as a whole.
    const replaced = new Map<number, ReturnType<typeof decomposeConv>>();
    let failure = '';
    const localMade = new Set(made);
    for (const use of layer.uses) {
      const index = nodeIndex.get(use.node);
      if (index === undefined) {
        failure = `node ${use.node} not found`;
        break;
      }
      // Pieces of an external weight go to the output's data file: made when written, one layer's
      // weights at a time (the last one kept for its next piece), so that memory stays near one
      // tensor however many layers are decomposed.
      const later = ref.storage === 'external' && ref.origin.kind === 'initializer' ? lastOf(slot, layer.id, weights, layer) : undefined;
      const d = decomposeConv(nodes[index], use, layer, w, req.mask, ref.dataType, opset, localMade, later);
      if (typeof d === 'string') {
        failure = d;
        break;
      }
      replaced.set(index, d);
    }
    if (failure) {
      masked(failure);
      continue;
    }
    for (const n of localMade) made.add(n);
    let description = '';
    for (const [index, d] of replaced) {
      if (typeof d === 'string') continue;
      edits.replaceNodes.set(index, d.nodes);
      pushAll(edits.addInitializers, d.initializers);
      for (const [t, m] of d.madeLater) edits.madeLater.set(t, m);
      description = d.description;
    }
    if (ref.origin.kind === 'initializer') edits.dropInitializers.add(layer.id);
    else edits.replaceNodes.set(nodes.findIndex((n) => n.opType === 'Constant' && n.output?.[0] === layer.id), []);
    outcomes.push({ layer: layer.id, requested: 'decomposed', applied: 'decomposed', note: description, storedWeights: (w.length / 9) * maskCount(req.mask) });
  }
  return { edits, outcomes, masked: stillMasked };
}
