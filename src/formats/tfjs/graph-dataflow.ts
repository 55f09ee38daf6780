/**
 * A GraphModel's GraphDef as layer-wise recovery's segment planner sees it
 * (src/core/recover/propagation.ts): the computing nodes in a topological order, every value named
 * "node:k". Constants (Const nodes, and nodes computed from constants only, such as an Identity
 * over a weight) are left out: the runtime has them. What TF.js's executor cannot be fed as a
 * segment's input is an obstacle, and the model keeps the whole-model engine.
 */
import type { Conv3x3Layer } from '../../model/conv.js';
import { DataflowGraph, planSegments } from '../../core/recover/propagation.js';
import { GraphNodeJson, nodeOf, tensorOf } from './graph.js';

/** Control flow: a segment cannot be cut through a loop or a conditional. */
const CONTROL_FLOW = new Set(['Enter', 'Exit', 'Merge', 'Switch', 'NextIteration', 'LoopCond', 'If', 'StatelessIf', 'While', 'StatelessWhile']);

export interface GraphFlow {
  graph: DataflowGraph;
  /** The position of each layer's convolution node. */
  cuts: (number | undefined)[];
}

export function graphDataflow(nodes: GraphNodeJson[], layers: Conv3x3Layer[]): GraphFlow | { obstacle: string } {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const flow = nodes.find((n) => CONTROL_FLOW.has(n.op));
  if (flow) return { obstacle: `the graph has control flow (${flow.op} node "${flow.name}")` };
  const placeholders = nodes.filter((n) => n.op === 'Placeholder');
  if (placeholders.length !== 1) return { obstacle: `the graph has ${placeholders.length} inputs` };

  // Constant: a Const, or computed from constants only (memoised; the graph has no cycles without control flow).
  const constant = new Map<string, boolean>();
  const isConstant = (name: string): boolean => {
    const known = constant.get(name);
    if (known !== undefined) return known;
    const n = byName.get(name);
    constant.set(name, false);
    const data = (n?.input ?? []).filter((i) => !i.startsWith('^'));
    const value = n !== undefined && (n.op === 'Const' || (n.op !== 'Placeholder' && data.length > 0 && data.every((i) => isConstant(nodeOf(i)))));
    constant.set(name, value);
    return value;
  };
  const computing = nodes.filter((n) => n.op !== 'Placeholder' && !isConstant(n.name));
  const computingNames = new Set(computing.map((n) => n.name));
  for (const n of computing) {
    const control = (n.input ?? []).find((i) => i.startsWith('^') && !isConstant(nodeOf(i)));
    if (control) return { obstacle: `node "${n.name}" has a control dependency on "${nodeOf(control)}"` };
  }

  // Kahn's order, stable in the file's order.
  const reads = new Map(computing.map((n) => [n.name, (n.input ?? []).filter((i) => !i.startsWith('^') && computingNames.has(nodeOf(i))).map(tensorOf)]));
  const waiting = new Map(computing.map((n) => [n.name, new Set(reads.get(n.name)!.map(nodeOf)).size]));
  const readers = new Map<string, string[]>();
  for (const n of computing) for (const src of new Set(reads.get(n.name)!.map(nodeOf))) readers.set(src, [...(readers.get(src) ?? []), n.name]);
  const order: GraphNodeJson[] = [];
  const ready = computing.filter((n) => waiting.get(n.name) === 0);
  for (let i = 0; i < ready.length; i++) {
    order.push(ready[i]);
    for (const r of readers.get(ready[i].name) ?? []) {
      const left = waiting.get(r)! - 1;
      waiting.set(r, left);
      if (left === 0) ready.push(byName.get(r)!);
    }
  }
  if (order.length !== computing.length) return { obstacle: 'the graph has a cycle' };

  const input = `${placeholders[0].name}:0`;
  const used = new Map<string, Set<string>>();
  for (const n of computing) {
    for (const v of (n.input ?? []).filter((i) => !i.startsWith('^')).map(tensorOf)) {
      const src = nodeOf(v);
      used.set(src, (used.get(src) ?? new Set()).add(v));
    }
  }
  const graph: DataflowGraph = {
    input,
    nodes: order.map((n) => ({
      inputs: reads.get(n.name)!.concat((n.input ?? []).filter((i) => !i.startsWith('^') && nodeOf(i) === placeholders[0].name).map(tensorOf)),
      outputs: [...new Set([`${n.name}:0`, ...(used.get(n.name) ?? [])])],
    })),
  };
  const position = new Map(order.map((n, i) => [n.name, i]));
  const cuts = layers.map((l) => (l.uses.length === 1 ? position.get(l.uses[0].node) : undefined));
  // TF.js's executor keys what it is fed by node: two outputs of one node fed at once would
  // overwrite each other (graph_executor.ts), so no cut may keep two outputs of a node alive.
  if (cuts.every((c) => c !== undefined) && cuts.every((c, k) => k === 0 || c! > cuts[k - 1]!)) {
    for (const s of planSegments(graph, cuts as number[])) {
      const byNode = new Map<string, string>();
      for (const v of s.reads) {
        const other = byNode.get(nodeOf(v));
        if (other !== undefined && other !== v) return { obstacle: `a segment would be fed two outputs of node "${nodeOf(v)}" (${other}, ${v})` };
        byNode.set(nodeOf(v), v);
      }
    }
  }
  return { graph, cuts };
}
