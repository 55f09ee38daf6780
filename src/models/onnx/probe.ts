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
 * the session has loaded. Replaced external weights go to a temporary data file beside it. A model
 * read lazily (read.ts `lazy`) is given the same way, its large inline tensors read by onnxruntime
 * from the model file itself as external data at their offsets: the file is never held whole.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { KpruneError } from '../../errors.js';
import { createExclusive, writeAll, writeChunks } from '../../io/cleanup.js';
import { SessionOptions, createSession } from '../../runtime/ort/session.js';
import { GraphProto, ModelProto, onnx } from '../../formats/onnx/proto.js';
import { OnnxModel } from '../../formats/onnx/read.js';
import { exposeOutputs, probeModelBytes, replaceConstants, resolvePayloads, setData } from '../../formats/onnx/probe-bytes.js';
import { floatsToBytes } from '../../formats/onnx/tensor.js';

export { probeModelBytes };


/** Below this much external data, a probe that cannot be written beside the model is made in memory. */
const IN_MEMORY_LIMIT = 1.5 * 2 ** 30;

/** An onnxruntime session over the probe copy (see the top of this file for where it lives). */
export async function openProbeSession(
  model: OnnxModel,
  weights: ReadonlyMap<string, Float32Array>,
  outputs: string[],
  options: SessionOptions = {},
): Promise<ort.InferenceSession> {
  // A model read lazily (its large inline tensors left in the file) is given to onnxruntime as a
  // graph beside it whose initializers are external data in the model file itself, at their offsets.
  // onnxruntime refuses external data reached through a link out of the graph's folder: a model
  // file that is a link to another folder has its tensors read in instead.
  const lazy = model.payloads !== undefined && path.dirname(realpathSync(model.path)) === realpathSync(model.dir);
  if (model.externalFiles.size === 0 && !lazy) return createSession(probeModelBytes(model, weights, outputs), options, model.path);
  const stem = path.join(model.dir, `.${path.basename(model.path)}.kprune-probe.${process.pid}.${randomBytes(4).toString('hex')}`);
  // Created exclusively under a fresh random name (never an existing file, so never one the run
  // reads) and synchronously, registered for removal before they exist (see io/cleanup.ts).
  const made: { remove(): void }[] = [];
  try {
    const probe: ModelProto = onnx.ModelProto.decode(model.bytes);
    const graph: GraphProto = probe.graph!;
    resolvePayloads(model, graph, lazy ? 'refer' : 'read');
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
    const external = [...new Map([...model.externalFiles.values()].map((f) => [f.identity, f.bytes])).values()].reduce((a, b) => a + b, 0)
      + (model.payloads ?? []).reduce((a, p) => a + p.length, 0);
    if (external < IN_MEMORY_LIMIT) return createSession(probeModelBytes(model, weights, outputs), options, model.path);
    throw new KpruneError('io', `cannot write a temporary probe model beside the input (${code ?? String(e)}); onnxruntime needs one for a model with external data`, { file: model.path, cause: e });
  } finally {
    for (const f of made) f.remove();
  }
}
