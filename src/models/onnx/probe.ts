/**
 * A working copy of an ONNX model for measuring, recovery and evaluation, opened in onnxruntime:
 * some weights replaced, chosen intermediate values exposed as graph outputs (to gather
 * activations). Decoded and re-encoded with the schema: fine for a copy that is never kept; what
 * users get is written by write.ts.
 *
 * A model without external data is copied in memory. A model with external data is not inlined
 * (it may pass protobuf's 2 GiB limit, and would be held twice): its small graph is written as a
 * hidden temporary file beside the original, where onnxruntime finds the data files by their own
 * locations (it refuses data reached through links out of the model's folder), and removed once
 * the session has loaded. Replaced external weights go to a temporary data file beside it.
 */
import { randomBytes } from 'node:crypto';
import { closeSync } from 'node:fs';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { KpruneError } from '../../errors.js';
import { createExclusive, writeAll, writeChunks } from '../../io/cleanup.js';
import { SessionOptions, createSession } from '../../runtime/ort/session.js';
import { GraphProto, ModelProto, TensorProto, onnx } from '../../formats/onnx/proto.js';
import { OnnxModel, externalBytes } from '../../formats/onnx/read.js';
import { floatsToBytes } from '../../formats/onnx/tensor.js';

function setData(t: TensorProto, values: Float32Array): void {
  t.rawData = floatsToBytes(values, t.dataType ?? 1);
  t.floatData = [];
  t.doubleData = [];
  t.int32Data = [];
  t.externalData = [];
  t.dataLocation = 0;
}

function replaceConstants(graph: GraphProto, weights: ReadonlyMap<string, Float32Array>): void {
  for (const n of graph.node ?? []) {
    const values = n.opType === 'Constant' ? weights.get(n.output?.[0] ?? '') : undefined;
    const t = values ? (n.attribute ?? []).find((a) => a.name === 'value')?.t : undefined;
    if (t && values) setData(t, values);
  }
}

function exposeOutputs(graph: GraphProto, outputs: string[]): void {
  const inputs = new Set((graph.input ?? []).map((i) => i.name));
  const existing = new Set((graph.output ?? []).map((o) => o.name));
  graph.output = [...(graph.output ?? []), ...outputs.filter((n) => !existing.has(n) && !inputs.has(n)).map((name) => onnx.ValueInfoProto.create({ name }))];
}

export function probeModelBytes(model: OnnxModel, weights: ReadonlyMap<string, Float32Array>, outputs: string[]): Uint8Array {
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

/** Below this much external data, a probe that cannot be written beside the model is made in memory. */
const IN_MEMORY_LIMIT = 1.5 * 2 ** 30;

/** An onnxruntime session over the probe copy (see the top of this file for where it lives). */
export async function openProbeSession(
  model: OnnxModel,
  weights: ReadonlyMap<string, Float32Array>,
  outputs: string[],
  options: SessionOptions = {},
): Promise<ort.InferenceSession> {
  if (model.externalFiles.size === 0) return createSession(probeModelBytes(model, weights, outputs), options, model.path);
  const stem = path.join(model.dir, `.${path.basename(model.path)}.kprune-probe.${process.pid}.${randomBytes(4).toString('hex')}`);
  // Created exclusively under a fresh random name (never an existing file, so never one the run
  // reads) and synchronously, registered for removal before they exist (see io/cleanup.ts).
  const made: { remove(): void }[] = [];
  try {
    const probe: ModelProto = onnx.ModelProto.decode(model.bytes);
    const graph: GraphProto = probe.graph!;
    const data = createExclusive(`${stem}.bin`);
    made.push(data);
    try {
      let at = 0;
      for (const t of graph.initializer ?? []) {
        const values = weights.get(t.name ?? '');
        if (!values) continue;
        if (t.dataLocation !== 1) {
          setData(t, values);
          continue;
        }
        // One tensor at a time: the replaced weights may be made on demand.
        const bytes = floatsToBytes(values, t.dataType ?? 1);
        await writeAll(data.fd, bytes);
        t.externalData = [{ key: 'location', value: path.basename(`${stem}.bin`) }, { key: 'offset', value: String(at) }, { key: 'length', value: String(bytes.length) }];
        at += bytes.length;
      }
    } finally {
      closeSync(data.fd);
    }
    replaceConstants(graph, weights);
    exposeOutputs(graph, outputs);
    const graphFile = createExclusive(`${stem}.onnx`);
    made.push(graphFile);
    await writeChunks(graphFile.fd, [onnx.ModelProto.encode(probe).finish()], { sync: false });
    return await createSession(`${stem}.onnx`, options, model.path);
  } catch (e) {
    if (e instanceof KpruneError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    // A folder we may not write to: an in-memory copy still works below protobuf's limit.
    const external = [...new Map([...model.externalFiles.values()].map((f) => [f.identity, f.bytes])).values()].reduce((a, b) => a + b, 0);
    if (external < IN_MEMORY_LIMIT) return createSession(probeModelBytes(model, weights, outputs), options, model.path);
    throw new KpruneError('io', `cannot write a temporary probe model beside the input (${code ?? String(e)}); onnxruntime needs one for a model with external data`, { file: model.path, cause: e });
  } finally {
    for (const f of made) f.remove();
  }
}
