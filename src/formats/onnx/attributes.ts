/**
 * The one ONNX attribute decoder: attributes decoded once into plain values (AttrValue,
 * model/graph.ts) by their declared type, and getters over them that say what went wrong (after
 * onnxruntime's js/web attribute.ts). The format's readers use the getters; decode-graph.ts hands
 * the decoded values to the TF.js executor.
 */
import { KpruneError } from '../../errors.js';
import type { AttrValue, HostTensor } from '../../model/graph.js';
import { AttributeProto, NodeProto, TensorProto, onnx, toNumber } from './proto.js';

const { AttributeType } = onnx.AttributeProto;
const utf8 = (b: Uint8Array) => Buffer.from(b).toString('utf8');

/** The type of an attribute written without one (files from before IR version 2): the field that holds data. */
function impliedType(a: AttributeProto): number {
  if (a.ints?.length) return AttributeType.INTS;
  if (a.floats?.length) return AttributeType.FLOATS;
  if (a.strings?.length) return AttributeType.STRINGS;
  if (a.t) return AttributeType.TENSOR;
  if (a.s?.length) return AttributeType.STRING;
  if (a.f) return AttributeType.FLOAT;
  return AttributeType.INT;
}

/**
 * An attribute's value. `tensor` decodes a TENSOR attribute's value (where its data may live is
 * the caller's knowledge); without it, tensor attributes stay undecoded ('other').
 */
export function decodeAttribute(a: AttributeProto, tensor?: (t: TensorProto) => HostTensor): AttrValue {
  switch (a.type || impliedType(a)) {
    case AttributeType.FLOAT: return { type: 'float', value: a.f ?? 0 };
    case AttributeType.INT: return { type: 'int', value: toNumber(a.i) };
    case AttributeType.STRING: return { type: 'string', value: a.s ? utf8(a.s) : '' };
    case AttributeType.TENSOR: return tensor && a.t ? { type: 'tensor', value: tensor(a.t) } : { type: 'other', value: null };
    case AttributeType.FLOATS: return { type: 'floats', value: [...(a.floats ?? [])] };
    case AttributeType.INTS: return { type: 'ints', value: (a.ints ?? []).map(toNumber) };
    case AttributeType.STRINGS: return { type: 'strings', value: (a.strings ?? []).map(utf8) };
    default: return { type: 'other', value: null };
  }
}

/** A node's attributes by name, with typed getters that name the node when a type is wrong. */
export class Attributes {
  private readonly values = new Map<string, AttrValue>();

  constructor(private readonly node: NodeProto) {
    for (const a of node.attribute ?? []) if (a.name) this.values.set(a.name, decodeAttribute(a));
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  int(name: string, fallback: number): number {
    const v = this.values.get(name);
    if (!v) return fallback;
    if (v.type !== 'int') throw this.mismatch(name, 'int', v.type);
    return v.value;
  }

  ints(name: string, fallback: number[]): number[] {
    const v = this.values.get(name);
    if (!v) return fallback;
    if (v.type !== 'ints') throw this.mismatch(name, 'ints', v.type);
    return v.value;
  }

  float(name: string, fallback: number): number {
    const v = this.values.get(name);
    if (!v) return fallback;
    if (v.type !== 'float') throw this.mismatch(name, 'float', v.type);
    return v.value;
  }

  string(name: string, fallback: string): string {
    const v = this.values.get(name);
    if (!v) return fallback;
    if (v.type !== 'string') throw this.mismatch(name, 'string', v.type);
    return v.value;
  }

  private mismatch(name: string, want: string, got: string): KpruneError {
    return new KpruneError('bad-model', `attribute "${name}" of node "${this.node.name ?? ''}" is of type ${got}, not ${want}`, { node: this.node.name ?? undefined });
  }
}
