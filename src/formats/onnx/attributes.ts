/**
 * ONNX node attributes decoded once into plain values, with getters that say what went wrong
 * (after onnxruntime's js/web attribute.ts).
 */
import { KpruneError } from '../../errors.js';
import { AttributeProto, NodeProto, toNumber } from './proto.js';

export class Attributes {
  private readonly map = new Map<string, AttributeProto>();

  constructor(private readonly node: NodeProto) {
    for (const a of node.attribute ?? []) if (a.name) this.map.set(a.name, a);
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  int(name: string, fallback: number): number {
    const a = this.map.get(name);
    if (!a) return fallback;
    if (a.i === undefined || a.i === null) throw this.mismatch(name, 'int');
    return toNumber(a.i);
  }

  ints(name: string, fallback: number[]): number[] {
    const a = this.map.get(name);
    if (!a) return fallback;
    return (a.ints ?? []).map(toNumber);
  }

  float(name: string, fallback: number): number {
    const a = this.map.get(name);
    if (!a) return fallback;
    if (a.f === undefined || a.f === null) throw this.mismatch(name, 'float');
    return a.f;
  }

  string(name: string, fallback: string): string {
    const a = this.map.get(name);
    if (!a) return fallback;
    return a.s ? Buffer.from(a.s).toString('utf8') : fallback;
  }

  private mismatch(name: string, want: string): KpruneError {
    return new KpruneError('bad-model', `attribute "${name}" of node "${this.node.name ?? ''}" is not of type ${want}`, { node: this.node.name ?? undefined });
  }
}
