/**
 * The shape of the operator table: one typed row per ONNX operator, naming its inputs and
 * attributes (with the opsets they belong to), the layout it wants, and the code that runs it
 * (after tfjs-converter's op_list). Attribute and input names are resolved into `Params` by the
 * executor; a row's code asks for parameters by name and never sees a node or a protobuf.
 */
import type * as TF from '../tf.js';
import { KpruneError } from '../../../errors.js';
import type { Tf } from '../backend.js';
import type { ConvGradients } from '../conv.js';
import type { AttrValue, DecodedNode } from '../../../model/graph.js';
import type { LayoutClass, StoredLayout, Value } from './layout.js';

/**
 * - `tensor`: a tensor input (layout-adapted per the row's class); `tensors`: all remaining inputs.
 * - `int`, `ints`, `float`, `floats`, `string`: values, from an attribute or read from an input.
 */
export type ParamKind = 'tensor' | 'tensors' | 'int' | 'ints' | 'float' | 'floats' | 'string';

/** Constant inputs some operators want in another form, prepared once when weights are loaded. */
export type Prepare = 'conv-filter';

interface ParamBase {
  name: string;
  kind: ParamKind;
  /** First and last opset in which the parameter comes from here (inclusive; default: always). */
  since?: number;
  until?: number;
}

export interface InputParam extends ParamBase {
  optional?: boolean;
  /** A weight-like input: never layout-converted, and prepared once when constant. */
  weight?: boolean;
  prepare?: Prepare;
}

export interface AttrParam extends ParamBase {
  kind: Exclude<ParamKind, 'tensor' | 'tensors'>;
  default?: number | number[] | string;
}

export type RunResult = TF.Tensor | TF.Tensor[] | Value[];

export interface OpContext {
  tf: Tf;
  node: DecodedNode;
  opset: number;
  /** The layout the data inputs were given in (`axis` and `elementwise` rows). */
  layout: StoredLayout;
  /** Rank of the first data input. */
  rank: number;
  /** Where ONNX axis `a` of the first data input lives as given. */
  axis(a: number): number;
  /** ONNX dims of a tensor parameter, whatever its storage. */
  dims(name: string): number[];
  /** Does a tensor parameter need a gradient (it depends on a trainable weight)? */
  needsGrad(name: string): boolean;
  gradients: ConvGradients;
  /** An error about this node. */
  fail(message: string, code?: 'unsupported' | 'bad-model'): KpruneError;
}

export interface OpRow {
  op: string;
  /** Default-domain opsets this row implements. */
  opsets: [number, number];
  layout: LayoutClass;
  inputs: InputParam[];
  attrs: AttrParam[];
  /** Evaluated once when the weights are loaded (Constant), never at run time. */
  constant?: boolean;
  /** How many outputs `run` produces (default 1); a graph that uses more is refused up front. */
  outputs?: number;
  run(p: Params, ctx: OpContext): RunResult;
}

export function activeIn<P extends ParamBase>(spec: P, opset: number): boolean {
  return (spec.since === undefined || opset >= spec.since) && (spec.until === undefined || opset <= spec.until);
}

/** The inputs of a row in one opset, in ONNX input order. */
export function rowInputs(row: OpRow, opset: number): InputParam[] {
  return row.inputs.filter((i) => activeIn(i, opset));
}

/** A row's parameters for one node at one run: getters by name, typed, with the row's defaults. */
export class Params {
  constructor(
    private readonly row: OpRow,
    private readonly node: DecodedNode,
    private readonly opset: number,
    /** Tensor inputs by parameter name (already layout-adapted); undefined for omitted optionals. */
    private readonly tensorsByName: Map<string, Value | Value[] | undefined>,
    /** Host values of value inputs (ints, floats read from inputs). */
    private readonly hostByName: Map<string, ArrayLike<number> | undefined>,
  ) {}

  private err(message: string, code: 'bad-model' | 'unsupported' = 'bad-model'): KpruneError {
    return new KpruneError(code, `${this.node.opType} node "${this.node.name}": ${message}`, { node: this.node.name });
  }

  private declared(name: string): (InputParam | AttrParam)[] {
    const specs = [...this.row.inputs, ...this.row.attrs].filter((s) => s.name === name && activeIn(s, this.opset));
    if (specs.length === 0 && ![...this.row.inputs, ...this.row.attrs].some((s) => s.name === name)) {
      // A bug in the table, not in the model: the row's code asks for something its row lacks.
      throw new Error(`operator row ${this.row.op} asks for undeclared parameter "${name}"`);
    }
    return specs;
  }

  /** The tensor of a required tensor input. */
  tensor(name: string): TF.Tensor {
    const t = this.maybeTensor(name);
    if (!t) throw this.err(`input "${name}" is missing`);
    return t;
  }

  maybeTensor(name: string): TF.Tensor | undefined {
    this.declared(name);
    const v = this.tensorsByName.get(name);
    if (Array.isArray(v)) throw new Error(`operator row ${this.row.op}: "${name}" is variadic`);
    return v?.t;
  }

  value(name: string): Value | undefined {
    this.declared(name);
    const v = this.tensorsByName.get(name);
    return Array.isArray(v) ? undefined : v;
  }

  tensors(name: string): TF.Tensor[] {
    this.declared(name);
    const v = this.tensorsByName.get(name);
    return Array.isArray(v) ? v.map((x) => x.t) : v ? [v.t] : [];
  }

  /** Is the parameter given on this node (an attribute present, an optional input not omitted)? */
  has(name: string): boolean {
    for (const s of this.declared(name)) {
      if (this.row.inputs.includes(s as InputParam)) {
        if (this.tensorsByName.get(name) !== undefined || this.hostByName.get(name) !== undefined) return true;
      } else if (this.node.attrs.has(name)) {
        return true;
      }
    }
    return false;
  }

  private raw(name: string): number[] | string | undefined {
    for (const s of this.declared(name)) {
      if (this.row.inputs.includes(s as InputParam)) {
        const h = this.hostByName.get(name);
        if (h !== undefined) return Array.from(h);
        continue;
      }
      const a: AttrValue | undefined = this.node.attrs.get(name);
      if (a === undefined) continue;
      switch (a.type) {
        case 'int': case 'float': return [a.value];
        case 'ints': case 'floats': return a.value;
        case 'string': return a.value;
        default: throw this.err(`attribute "${name}" has an unexpected type (${a.type})`);
      }
    }
    const withDefault = this.declared(name).find((s): s is AttrParam => 'default' in s && (s as AttrParam).default !== undefined);
    if (withDefault) {
      const d = withDefault.default!;
      return typeof d === 'string' ? d : Array.isArray(d) ? d : [d];
    }
    return undefined;
  }

  int(name: string): number {
    const v = this.maybeNumbers(name);
    if (v === undefined) throw this.err(`required attribute "${name}" not found`);
    if (v.length !== 1) throw this.err(`"${name}" should be one integer, got ${v.length} values`);
    return v[0];
  }

  /** Numbers from an attribute (int(s), float(s)) or read from an input; undefined when absent. */
  maybeNumbers(name: string): number[] | undefined {
    const v = this.raw(name);
    if (typeof v === 'string') throw this.err(`"${name}" should be numbers, got a string`);
    return v;
  }

  maybeInts(name: string): number[] | undefined {
    return this.maybeNumbers(name);
  }

  ints(name: string): number[] {
    const v = this.maybeNumbers(name);
    if (v === undefined) throw this.err(`required attribute "${name}" not found`);
    return v;
  }

  float(name: string): number {
    const v = this.maybeNumbers(name);
    if (v === undefined) throw this.err(`required attribute "${name}" not found`);
    if (v.length !== 1) throw this.err(`"${name}" should be one number, got ${v.length} values`);
    return v[0];
  }

  floats(name: string): number[] {
    return this.ints(name);
  }

  string(name: string): string {
    const v = this.raw(name);
    if (typeof v !== 'string') throw this.err(`"${name}" should be a string`);
    return v;
  }
}
