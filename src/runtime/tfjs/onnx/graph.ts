/**
 * Executing an ONNX graph with TF.js ops, so that it can be differentiated.
 *
 * `OnnxTfjsGraph.compile` checks every node against the operator table (ops.ts) once and refuses
 * the whole model, naming every unsupported operator, before anything runs. `loadWeights` turns the
 * model's constants into TF.js tensors once (conv filters transposed to TF.js's HWIO once, the
 * trainable ones as variables); `run` executes the nodes in order, converting layouts where a row
 * asks (layout.ts), and frees every intermediate value after its last use.
 */
import type * as TF from '../tf.js';
import { KpruneError, reasonOf } from '../../../errors.js';
import type { Tf } from '../backend.js';
import type { ConvGradients } from '../conv.js';
import type { DecodedGraph, DecodedNode, HostTensor } from '../../../model/graph.js';
import { StoredLayout, Value, alignToChannelsLast, commonLayout, logicalDims, storedAxis, toChannelsLast, toPlain } from './layout.js';
import { MAX_OPSET, OPS, findRow } from './ops.js';
import { InputParam, OpContext, OpRow, Params, Prepare, rowInputs } from './table.js';
import { maxOf } from '../../../util/arrays.js';

export interface CompiledNode {
  node: DecodedNode;
  row: OpRow;
  /** The row's inputs in this opset, in ONNX input order. */
  inputs: InputParam[];
  /** Values whose last reader is this node (freed after it runs). */
  releases: string[];
}

export interface CompileOptions {
  /** How convolutions are differentiated (default: kprune's forward-convolution gradients). */
  gradients?: ConvGradients;
}

/** ONNX OIHW filter to TF.js HWIO. */
export function toConvFilter(tf: Tf, oihw: TF.Tensor): TF.Tensor4D {
  return tf.transpose(oihw, [2, 3, 1, 0]) as TF.Tensor4D;
}

/** TF.js HWIO filter back to ONNX OIHW. */
export function fromConvFilter(tf: Tf, hwio: TF.Tensor): TF.Tensor4D {
  return tf.transpose(hwio, [3, 2, 0, 1]) as TF.Tensor4D;
}

function prepareTensor(tf: Tf, t: TF.Tensor, prepare: Prepare): TF.Tensor {
  switch (prepare) {
    case 'conv-filter': return toConvFilter(tf, t);
  }
}

function hostToTensor(tf: Tf, h: HostTensor): Value {
  if (h.dtype === 'float32') return { t: tf.tensor(h.data, h.dims, 'float32'), layout: 'plain' };
  const ints = tf.tensor(h.data, h.dims, 'int32');
  if (h.dtype === 'int32') return { t: ints, layout: 'plain', host: h.data };
  const b = tf.cast(ints, 'bool');
  ints.dispose();
  return { t: b, layout: 'plain', host: h.data };
}

/** The model's constants as TF.js tensors, some trainable, for `OnnxTfjsGraph.run`. */
export class GraphWeights {
  /** Trainable weights by name, as variables in their prepared (TF.js) layout. */
  readonly variables: ReadonlyMap<string, TF.Variable> = new Map<string, TF.Variable>();
  /** Values that depend on a trainable weight: their producers must pass gradients. */
  readonly requiresGrad = new Set<string>();
  private readonly raw = new Map<string, Value>();
  private readonly prepared = new Map<string, TF.Tensor>();
  private readonly onnxDims = new Map<string, number[]>();
  private readonly names = new Set<string>();
  private disposed = false;

  constructor(private readonly tf: Tf) {}

  /** @internal */
  addRaw(name: string, v: Value, dims: number[]): void {
    this.raw.set(name, v);
    this.onnxDims.set(name, dims);
    this.names.add(name);
  }

  /** @internal */
  addPrepared(name: string, prepare: Prepare, t: TF.Tensor, dims: number[]): void {
    this.prepared.set(`${name}\u0000${prepare}`, t);
    this.onnxDims.set(name, dims);
    this.names.add(name);
  }

  /** @internal */
  addVariable(name: string, v: TF.Variable, dims: number[]): void {
    (this.variables as Map<string, TF.Variable>).set(name, v);
    this.onnxDims.set(name, dims);
    this.names.add(name);
  }

  /** Is this a constant of the model (in any form)? */
  has(name: string): boolean {
    return this.names.has(name);
  }

  /** A constant as given to an operator: prepared when the operator asks for it. */
  get(name: string, prepare?: Prepare): Value | undefined {
    if (prepare) {
      const t = this.variables.get(name) ?? this.prepared.get(`${name}\u0000${prepare}`);
      return t ? { t, layout: 'plain' } : undefined;
    }
    return this.raw.get(name);
  }

  /** Every tensor this object owns (never freed by a run). */
  ownedIds(): Set<number> {
    return new Set([...this.raw.values()].map((v) => v.t.id).concat([...this.prepared.values()].map((t) => t.id), [...this.variables.values()].map((t) => t.id)));
  }

  /** A trainable weight's values in the model's own layout (OIHW). */
  readTrainable(name: string): Float32Array {
    const v = this.variables.get(name);
    if (!v) throw new Error(`"${name}" is not a trainable weight`);
    const tf = this.tf;
    const t = tf.tidy(() => fromConvFilter(tf, v));
    const out = Float32Array.from(t.dataSync() as Float32Array);
    t.dispose();
    return out;
  }

  /** Replaces a trainable weight's values (given in the model's own layout). */
  assignTrainable(name: string, values: Float32Array): void {
    const v = this.variables.get(name);
    if (!v) throw new Error(`"${name}" is not a trainable weight`);
    const tf = this.tf;
    tf.tidy(() => v.assign(toConvFilter(tf, tf.tensor(values, this.onnxDims.get(name)!))));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.raw.values()) v.t.dispose();
    for (const t of this.prepared.values()) t.dispose();
    for (const v of this.variables.values()) v.dispose();
  }
}

/** TF.js variable names are global to the engine: a serial keeps every load's names distinct. */
let variableSerial = 0;

export interface LoadWeightsOptions {
  /** Replacement values for some float constants, in the model's own layout. */
  overrides?: ReadonlyMap<string, Float32Array>;
  /** Constants to make variables; each must be a convolution filter (see `prepare`). */
  trainable?: Iterable<string>;
}

export class OnnxTfjsGraph {
  readonly inputs: { name: string; dims: (number | string)[] }[];
  readonly outputs: string[];
  readonly opset: number;
  readonly file: string;
  readonly gradients: ConvGradients;
  private readonly nodes: CompiledNode[];
  /** The node producing each value. */
  private readonly producers = new Map<string, CompiledNode>();

  private constructor(private readonly tf: Tf, private readonly graph: DecodedGraph, nodes: CompiledNode[], options: CompileOptions) {
    this.inputs = graph.inputs;
    this.outputs = graph.outputs;
    this.opset = graph.opset;
    this.file = graph.file;
    this.nodes = nodes;
    this.gradients = options.gradients ?? 'kprune';
    for (const n of nodes) for (const o of n.node.outputs) if (o) this.producers.set(o, n);
  }

  /** Checks a decoded graph (formats/onnx/decode-graph.ts) against the operator table. */
  static compile(graph: DecodedGraph, tf: Tf, options: CompileOptions = {}): OnnxTfjsGraph {
    const fail = (message: string, code: 'unsupported' | 'bad-model', node?: string) => new KpruneError(code, message, { file: graph.file, node });
    if (graph.opset < 1) throw fail('the model imports no default-domain opset', 'bad-model');

    // Every unsupported operator is named in one error, before anything runs.
    const missing = new Map<string, string[]>();
    const rows: OpRow[] = [];
    for (const n of graph.nodes) {
      const row = n.domain === '' ? findRow(n.opType, graph.opset) : undefined;
      if (row) {
        rows.push(row);
        continue;
      }
      let key: string;
      if (n.domain !== '') key = `${n.domain}.${n.opType}`;
      else {
        const known = OPS.filter((r) => r.op === n.opType);
        key = known.length === 0 ? n.opType : `${n.opType} at opset ${graph.opset} (supported: ${known.map((r) => `${r.opsets[0]}-${r.opsets[1]}`).join(', ')})`;
      }
      missing.set(key, [...(missing.get(key) ?? []), n.name]);
    }
    if (missing.size > 0) {
      const list = [...missing].map(([op, nodes]) => `${op} (${nodes.length === 1 ? 'node' : 'nodes'} ${nodes.slice(0, 3).map((x) => `"${x}"`).join(', ')}${nodes.length > 3 ? ', ...' : ''})`);
      throw new KpruneError('unsupported', `the TF.js executor does not support ${list.join('; ')}`, {
        file: graph.file,
        node: [...missing.values()][0][0],
        suggestion: `supported operators: ${[...new Set(OPS.map((r) => r.op))].sort().join(', ')} (default domain, opsets up to ${MAX_OPSET})`,
      });
    }

    const order = topologicalOrder(graph, fail);
    const used = new Set<string>(graph.outputs);
    for (const n of graph.nodes) for (const i of n.inputs) if (i) used.add(i);
    const compiled: CompiledNode[] = order.map((index) => {
      const node = graph.nodes[index];
      const row = rows[index];
      const produced = row.outputs ?? 1;
      node.outputs.forEach((o, k) => {
        if (o && k >= produced && used.has(o)) throw fail(`${node.opType} node "${node.name}": output ${k} ("${o}") is not supported`, 'unsupported', node.name);
      });
      const inputs = rowInputs(row, graph.opset);
      const fixed = inputs.filter((i) => i.kind !== 'tensors').length;
      if (!inputs.some((i) => i.kind === 'tensors') && node.inputs.filter((x, k) => x && k >= fixed).length > 0) {
        throw fail(`${node.opType} node "${node.name}" has ${node.inputs.length} inputs; the executor knows ${fixed}`, 'unsupported', node.name);
      }
      return { node, row, inputs, releases: [] };
    });
    // Last readers, to free values early.
    const last = new Map<string, CompiledNode>();
    for (const c of compiled) for (const i of c.node.inputs) if (i) last.set(i, c);
    for (const [name, c] of last) c.releases.push(name);
    return new OnnxTfjsGraph(tf, graph, compiled, options);
  }

  /** The node that produces a value (undefined for inputs and constants). */
  producer(value: string): DecodedNode | undefined {
    return this.producers.get(value)?.node;
  }

  /** The nodes reading a value. */
  consumers(value: string): DecodedNode[] {
    return this.nodes.filter((c) => c.node.inputs.includes(value)).map((c) => c.node);
  }

  /** Turns the model's constants into tensors (outside any tidy scope: the caller disposes them). */
  loadWeights(options: LoadWeightsOptions = {}): GraphWeights {
    const tf = this.tf;
    const g = this.graph;
    const w = new GraphWeights(tf);
    const trainable = new Set(options.trainable ?? []);
    const fail = (m: string) => new KpruneError('usage', m, { file: this.file });
    for (const name of options.overrides?.keys() ?? []) if (!g.constantNames.has(name)) throw fail(`cannot override "${name}": it is not a constant of the model`);

    // How each constant is read: raw, prepared, or both.
    const uses = new Map<string, Set<Prepare | 'raw'>>();
    const mark = (name: string, how: Prepare | 'raw') => {
      if (!g.constantNames.has(name)) return;
      uses.set(name, (uses.get(name) ?? new Set()).add(how));
    };
    for (const c of this.nodes) {
      c.node.inputs.forEach((name, k) => {
        if (!name) return;
        const spec = c.inputs[k] ?? c.inputs[c.inputs.length - 1];
        mark(name, spec?.prepare ?? 'raw');
      });
    }
    for (const o of this.outputs) mark(o, 'raw');

    for (const name of trainable) {
      const how = uses.get(name);
      if (!g.constantNames.has(name)) throw fail(`cannot train "${name}": it is not a constant of the model`);
      if (!how || how.has('raw') || how.size !== 1) {
        throw new KpruneError('unsupported', `cannot train "${name}": only convolution filters train, and this tensor is also read by other operators`, { file: this.file });
      }
    }

    try {
      for (const [name, how] of uses) {
        const host = g.readConstant(name);
        const override = options.overrides?.get(name);
        if (override && override.length !== host.data.length) throw fail(`override for "${name}" has ${override.length} values, the tensor has ${host.data.length}`);
        const data: HostTensor = override ? { ...host, data: override } : host;
        for (const h of how) {
          if (h === 'raw') {
            w.addRaw(name, hostToTensor(tf, data), data.dims);
            continue;
          }
          const prepared = tf.tidy(() => prepareTensor(tf, tf.tensor(data.data, data.dims, 'float32'), h));
          if (trainable.has(name)) {
            w.addVariable(name, tf.variable(prepared, true, `kprune/${variableSerial++}/${name}`), data.dims);
            prepared.dispose();
          } else {
            w.addPrepared(name, h, prepared, data.dims);
          }
        }
      }
    } catch (e) {
      w.dispose();
      throw e;
    }

    // Which values carry gradients back to a trainable weight.
    for (const name of trainable) w.requiresGrad.add(name);
    for (const c of this.nodes) {
      if (c.row.layout === 'shape' || c.row.constant) continue;
      if (c.node.inputs.some((i) => i && w.requiresGrad.has(i))) for (const o of c.node.outputs) if (o) w.requiresGrad.add(o);
    }
    return w;
  }

  /**
   * Runs the graph on `feeds` (ONNX layout) and returns the fetched values in ONNX layout (default:
   * the graph's outputs). The caller owns the returned tensors; every other intermediate is freed.
   * Under tf.variableGrads / optimizer.minimize, gradients flow to `weights.variables`.
   */
  run(weights: GraphWeights, feeds: Map<string, TF.Tensor>, fetch: string[] = this.outputs): Map<string, TF.Tensor> {
    const tf = this.tf;
    const env = new Map<string, Value>();
    const refs = new Map<number, number>();
    const pinned = weights.ownedIds();
    const keep = new Set(fetch);
    const hold = (name: string, v: Value) => {
      env.set(name, v);
      refs.set(v.t.id, (refs.get(v.t.id) ?? 0) + 1);
    };
    const release = (t: TF.Tensor) => {
      const n = (refs.get(t.id) ?? 0) - 1;
      if (n > 0) {
        refs.set(t.id, n);
        return;
      }
      refs.delete(t.id);
      if (!pinned.has(t.id)) t.dispose();
    };
    for (const i of this.inputs) {
      const t = feeds.get(i.name);
      if (!t) throw new KpruneError('usage', `no value given for the model input "${i.name}"`, { file: this.file });
      pinned.add(t.id);
      env.set(i.name, { t, layout: 'plain' });
    }
    const lookup = (name: string, prepare?: Prepare): Value | undefined => {
      if (prepare && weights.has(name)) return weights.get(name, prepare);
      return env.get(name) ?? weights.get(name);
    };

    const handed = new Set<number>();
    try {
      for (const c of this.nodes) {
        if (c.row.constant) continue;
        const outs = this.runNode(c, weights, lookup);
        outs.forEach((v, k) => {
          const name = c.node.outputs[k];
          if (name) hold(name, v);
          else if (!pinned.has(v.t.id) && !refs.has(v.t.id)) v.t.dispose();
        });
        for (const name of c.releases) {
          const v = env.get(name);
          if (!v || keep.has(name) || pinned.has(v.t.id)) continue;
          env.delete(name);
          release(v.t);
        }
      }
      const result = new Map<string, TF.Tensor>();
      for (const name of fetch) {
        const v = lookup(name);
        if (!v) throw new KpruneError('usage', `"${name}" is not a value of the model`, { file: this.file });
        let t = toPlain(tf, v);
        // The caller owns what it gets: a copy when the tensor is a weight, a feed, or already handed out.
        if (t === v.t && (pinned.has(t.id) || handed.has(t.id))) t = tf.clone(t);
        handed.add(t.id);
        result.set(name, t);
      }
      return result;
    } finally {
      const seen = new Set<number>();
      for (const v of env.values()) {
        const id = v.t.id;
        if (pinned.has(id) || handed.has(id) || seen.has(id)) continue;
        seen.add(id);
        v.t.dispose();
      }
    }
  }

  private runNode(c: CompiledNode, weights: GraphWeights, lookup: (name: string, prepare?: Prepare) => Value | undefined): Value[] {
    const tf = this.tf;
    const { node, row } = c;
    const fail = (message: string, code: 'unsupported' | 'bad-model' = 'bad-model') =>
      new KpruneError(code, `${node.opType} node "${node.name}": ${message}`, { file: this.file, node: node.name });

    // Gather the inputs by parameter name.
    const raw = new Map<string, Value | Value[] | undefined>();
    const host = new Map<string, ArrayLike<number> | undefined>();
    const valueNames = new Map<string, string>();
    c.inputs.forEach((spec, k) => {
      if (spec.kind === 'tensors') {
        raw.set(spec.name, node.inputs.slice(k).filter((n) => n).map((n) => {
          const v = lookup(n);
          if (!v) throw fail(`input "${n}" is not defined before the node`);
          return v;
        }));
        return;
      }
      const name = node.inputs[k] ?? '';
      if (!name) {
        if (!spec.optional) throw fail(`required input "${spec.name}" is missing`);
        return;
      }
      valueNames.set(spec.name, name);
      const v = lookup(name, spec.prepare);
      if (!v) throw fail(`input "${name}" is not defined before the node`);
      if (spec.kind === 'tensor') raw.set(spec.name, v);
      else host.set(spec.name, v.host ?? (v.t.dataSync() as Float32Array | Int32Array));
    });

    // Layout: the row's class decides, here (layout.ts); only ReduceMean without keepdims hands back
    // its result in ONNX order itself (ops.ts).
    const temps: TF.Tensor[] = [];
    const conv = (v: Value, to: StoredLayout | 'align', rank = 0): Value => {
      const t = to === 'plain' ? toPlain(tf, v) : to === 'channels-last' ? toChannelsLast(tf, v) : alignToChannelsLast(tf, v.t, rank);
      if (t === v.t) return v;
      temps.push(t);
      return { t, layout: to === 'plain' || t.rank < 3 ? 'plain' : 'channels-last' };
    };
    const dataSpecs = c.inputs.filter((s) => (s.kind === 'tensor' || s.kind === 'tensors') && !s.weight);
    const adapted = new Map<string, Value | Value[] | undefined>();
    const dataValues = dataSpecs.flatMap((s) => {
      const v = raw.get(s.name);
      return v === undefined ? [] : Array.isArray(v) ? v : [v];
    });
    let layout: StoredLayout = 'plain';
    let rank = dataValues[0]?.t.rank ?? 0;
    const mapAll = (f: (v: Value) => Value) => {
      for (const s of dataSpecs) {
        const v = raw.get(s.name);
        adapted.set(s.name, v === undefined ? undefined : Array.isArray(v) ? v.map(f) : f(v));
      }
    };
    switch (row.layout) {
      case 'channels-last': {
        let first = true;
        mapAll((v) => {
          const out = first && v.t.rank >= 3 ? conv(v, 'channels-last') : conv(v, 'plain');
          first = false;
          return out;
        });
        layout = rank >= 3 ? 'channels-last' : 'plain';
        break;
      }
      case 'elementwise': {
        const cl = dataValues.filter((v) => v.layout === 'channels-last');
        const r = Math.max(0, maxOf(cl.map((v) => v.t.rank)));
        const fits = cl.length > 0 && cl.every((v) => v.t.rank === r) && dataValues.every((v) => v.t.rank <= r);
        if (fits) {
          mapAll((v) => (v.layout === 'channels-last' ? v : conv(v, 'align', r)));
          layout = 'channels-last';
          rank = r;
        } else {
          mapAll((v) => conv(v, 'plain'));
        }
        break;
      }
      case 'axis':
        layout = commonLayout(dataValues);
        mapAll((v) => (layout === 'channels-last' ? v : conv(v, 'plain')));
        break;
      case 'plain':
        mapAll((v) => conv(v, 'plain'));
        break;
      case 'shape':
        mapAll((v) => v);
        break;
    }
    for (const s of c.inputs) {
      if (!s.weight || s.kind !== 'tensor') continue;
      const v = raw.get(s.name) as Value | undefined;
      if (!v) continue;
      let t = v.layout === 'plain' ? v.t : conv(v, 'plain').t;
      // A filter computed at run time (not a constant) is prepared here.
      if (s.prepare && !weights.has(valueNames.get(s.name) ?? '')) {
        t = prepareTensor(tf, t, s.prepare);
        temps.push(t);
      }
      adapted.set(s.name, { t, layout: 'plain' });
    }

    const ctx: OpContext = {
      tf,
      node,
      opset: this.opset,
      layout,
      rank,
      axis: (a) => storedAxis(layout, rank, a),
      dims: (name) => {
        const v = raw.get(name);
        if (!v || Array.isArray(v)) throw fail(`no tensor input "${name}"`);
        return logicalDims(v);
      },
      needsGrad: (name) => weights.requiresGrad.has(valueNames.get(name) ?? ''),
      gradients: this.gradients,
      fail,
    };
    const params = new Params(row, node, this.opset, adapted, host);

    let layouts: (StoredLayout | undefined)[] = [];
    let hosts: (Int32Array | Float32Array | undefined)[] = [];
    let results: TF.Tensor[];
    try {
      results = tf.tidy(() => {
        const r = row.run(params, ctx);
        if (r instanceof Array && r.length > 0 && !(r[0] instanceof tf.Tensor)) {
          const values = r as Value[];
          layouts = values.map((v) => v.layout);
          hosts = values.map((v) => v.host);
          return values.map((v) => v.t);
        }
        return r instanceof Array ? (r as TF.Tensor[]) : [r as TF.Tensor];
      });
    } catch (e) {
      if (e instanceof KpruneError) throw e;
      throw new KpruneError('runtime', `${node.opType} node "${node.name}" failed in TF.js: ${reasonOf(e, this.file).split('\n')[0]}`, { file: this.file, node: node.name, cause: e });
    } finally {
      for (const t of temps) if (!t.isDisposed) t.dispose();
    }
    return results.map((t, k) => {
      let l = layouts[k];
      if (l === undefined) {
        switch (row.layout) {
          case 'channels-last': case 'elementwise': l = layout === 'channels-last' && t.rank === rank ? 'channels-last' : 'plain'; break;
          case 'axis':
            if (layout === 'channels-last' && t.rank !== rank) throw new Error(`operator row ${row.op} changed the rank of a channels-last value`);
            l = layout;
            break;
          default: l = 'plain';
        }
      }
      return { t, layout: l, ...(hosts[k] ? { host: hosts[k] } : {}) };
    });
  }
}

/** Node indices in an order where every input is defined first (the file's own when it is one). */
function topologicalOrder(g: DecodedGraph, fail: (m: string, code: 'bad-model', node?: string) => KpruneError): number[] {
  const defined = new Set<string>([...g.inputs.map((i) => i.name), ...g.constantNames, '']);
  const order: number[] = [];
  const pending = g.nodes.map((_, i) => i);
  while (pending.length > 0) {
    const before = pending.length;
    for (let k = 0; k < pending.length; k++) {
      const n = g.nodes[pending[k]];
      if (n.opType === 'Constant' || n.inputs.every((i) => defined.has(i))) {
        order.push(pending[k]);
        for (const o of n.outputs) defined.add(o);
        pending.splice(k, 1);
        k--;
      }
    }
    if (pending.length === before) {
      const n = g.nodes[pending[0]];
      const missing = n.inputs.find((i) => !defined.has(i));
      throw fail(`node "${n.name}" reads "${missing}", which nothing defines (or the graph has a cycle)`, 'bad-model', n.name);
    }
  }
  return order;
}
