/**
 * A copy of an ONNX model's bytes with some weights replaced and some values exposed as outputs,
 * external data inlined: what a probe run (sizes, activations) or a training graph starts from.
 * Pure bytes; opening a session on them is src/models/onnx/probe.ts.
 */
import path from 'node:path';
import { KpruneError } from '../../errors.js';
import { GraphProto, ModelProto, TensorProto, onnx } from './proto.js';
import { OnnxModel, externalBytes, readRange } from './read.js';
import { floatsToBytes } from './tensor.js';
import { markedPayload } from './skeleton.js';

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

/**
 * The tensors a lazy read left in the file (skeleton.ts markers) in a decoded copy of the model:
 * `'read'` puts their bytes in (a copy that holds them); `'refer'` makes the initializers among them
 * external data read by onnxruntime from the model's own file at their offsets (for a copy written
 * beside the model: nothing is held twice), Constant values are read in.
 */
export function resolvePayloads(model: OnnxModel, graph: GraphProto, how: 'read' | 'refer'): void {
  const payloads = model.payloads;
  if (!payloads) return;
  const read = (t: TensorProto) => {
    const p = markedPayload(t.rawData, payloads);
    if (p) t.rawData = readRange(model.path, p.offset, p.length, 'the model', model.path);
  };
  for (const t of graph.initializer ?? []) {
    const p = markedPayload(t.rawData, payloads);
    if (!p) continue;
    if (how === 'read') {
      read(t);
      continue;
    }
    t.rawData = new Uint8Array(0);
    t.dataLocation = 1;
    t.externalData = [{ key: 'location', value: path.basename(model.path) }, { key: 'offset', value: String(p.offset) }, { key: 'length', value: String(p.length) }];
  }
  for (const n of graph.node ?? []) for (const a of n.attribute ?? []) if (a.t) read(a.t);
}

export function probeModelBytes(model: OnnxModel, weights: ReadonlyMap<string, Float32Array>, outputs: string[]): Uint8Array {
  const probe: ModelProto = onnx.ModelProto.decode(model.bytes);
  const graph: GraphProto = probe.graph!;
  resolvePayloads(model, graph, 'read');
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
