/**
 * A working copy of an ONNX model for recovery and evaluation: the prunable weights become graph
 * inputs (so one onnxruntime session runs the original, the reshaped and the recovered weights),
 * and chosen intermediate values become graph outputs (to gather activations). Decoded and
 * re-encoded with the schema: fine for a copy that lives only in memory.
 */
import { KpruneError } from '../../errors.js';
import { GraphProto, ModelProto, onnx } from './proto.js';
import { OnnxModel, externalBytes } from './read.js';

/** Bytes of the probe model with `weightInputs` fed at run time and `outputs` exposed. */
export function weightFedModelBytes(model: OnnxModel, weightInputs: string[], outputs: string[]): Uint8Array {
  const probe: ModelProto = onnx.ModelProto.decode(model.bytes);
  const graph: GraphProto = probe.graph!;
  const fed = new Set(weightInputs);
  const inputs = graph.input ?? [];
  const inputNames = new Set(inputs.map((i) => i.name ?? ''));
  const newInputs = [...inputs];
  const addInput = (name: string, elemType: number, dims: number[]) => {
    if (inputNames.has(name)) return;
    inputNames.add(name);
    newInputs.push(onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
    }));
  };
  const kept = [];
  for (const t of graph.initializer ?? []) {
    const name = t.name ?? '';
    if (fed.has(name)) {
      addInput(name, t.dataType ?? 1, (t.dims ?? []).map(Number));
      continue;
    }
    if (t.dataLocation === 1) {
      const ref = model.constants.get(name);
      if (!ref) throw new KpruneError('bad-model', `initializer "${name}" has unreadable external data`, { file: model.path });
      t.rawData = externalBytes(model, ref);
      t.externalData = [];
      t.dataLocation = 0;
    }
    kept.push(t);
  }
  graph.initializer = kept;
  graph.node = (graph.node ?? []).filter((n) => {
    const out = n.output?.[0] ?? '';
    if (n.opType !== 'Constant' || !fed.has(out)) return true;
    const t = (n.attribute ?? []).find((a) => a.name === 'value')?.t;
    addInput(out, t?.dataType ?? 1, (t?.dims ?? []).map(Number));
    return false;
  });
  graph.input = newInputs;
  const existing = new Set((graph.output ?? []).map((o) => o.name));
  graph.output = [...(graph.output ?? []), ...outputs.filter((n) => !existing.has(n) && !inputNames.has(n)).map((name) => onnx.ValueInfoProto.create({ name }))];
  return onnx.ModelProto.encode(probe).finish();
}
