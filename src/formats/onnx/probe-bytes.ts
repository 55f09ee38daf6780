/**
 * A copy of an ONNX model's bytes with some weights replaced and some values exposed as outputs,
 * external data inlined: what a probe run (sizes, activations) or a training graph starts from.
 * Pure bytes; opening a session on them is src/models/onnx/probe.ts.
 */
import { KpruneError } from '../../errors.js';
import { GraphProto, ModelProto, TensorProto, onnx } from './proto.js';
import { OnnxModel, assertWhole, externalBytes } from './read.js';
import { floatsToBytes } from './tensor.js';

export function setData(t: TensorProto, values: Float32Array): void {
  t.rawData = floatsToBytes(values, t.dataType ?? 1);
  t.floatData = [];
  t.doubleData = [];
  t.int32Data = [];
  t.externalData = [];
  t.dataLocation = 0;
}

export function replaceConstants(graph: GraphProto, weights: ReadonlyMap<string, Float32Array>): void {
  for (const n of graph.node ?? []) {
    const values = n.opType === 'Constant' ? weights.get(n.output?.[0] ?? '') : undefined;
    const t = values ? (n.attribute ?? []).find((a) => a.name === 'value')?.t : undefined;
    if (t && values) setData(t, values);
  }
}

export function exposeOutputs(graph: GraphProto, outputs: string[]): void {
  const inputs = new Set((graph.input ?? []).map((i) => i.name));
  const existing = new Set((graph.output ?? []).map((o) => o.name));
  graph.output = [...(graph.output ?? []), ...outputs.filter((n) => !existing.has(n) && !inputs.has(n)).map((name) => onnx.ValueInfoProto.create({ name }))];
}

export function probeModelBytes(model: OnnxModel, weights: ReadonlyMap<string, Float32Array>, outputs: string[]): Uint8Array {
  assertWhole(model, 'running the model');
  const probe: ModelProto = onnx.ModelProto.decode(model.bytes);
  const graph: GraphProto = probe.graph!;
  for (const t of graph.initializer ?? []) {
    const name = t.name ?? '';
    const values = weights.get(name);
    if (values) {
      setData(t, values);
    } else if (t.dataLocation === 1) {
      const ref = model.constants.get(name);
      if (!ref) throw new KpruneError('bad-model', `initializer "${name}" has unreadable external data`, { file: model.path });
      t.rawData = externalBytes(model, ref);
      t.externalData = [];
      t.dataLocation = 0;
    }
  }
  replaceConstants(graph, weights);
  exposeOutputs(graph, outputs);
  return onnx.ModelProto.encode(probe).finish();
}
