/**
 * Reading a source tree's import graph from the text of its files (every `import`/`export ... from`,
 * side-effect import and `import()` with a relative specifier), and checking it against a table of
 * floors: what test/architecture.test.ts enforces. Plain text, so files nobody has seen are read
 * the same way.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

export interface ImportEdge {
  /** Repository-relative, forward slashes. */
  from: string;
  to: string;
  /** The specifier as written. */
  spec: string;
}

const SPECIFIERS = [/\bfrom\s*(['"])(\.{1,2}\/[^'"\n]*)\1/g, /\bimport\s*(['"])(\.{1,2}\/[^'"\n]*)\1/g, /\bimport\s*\(\s*(['"])(\.{1,2}\/[^'"\n]*)\1/g];

/** Relative module specifiers in a file's text. */
export function specifiers(text: string): string[] {
  const found: { at: number; spec: string }[] = [];
  for (const re of SPECIFIERS) for (const m of text.matchAll(re)) found.push({ at: m.index ?? 0, spec: m[2] });
  return found.sort((a, b) => a.at - b.at).map((f) => f.spec);
}

/** The file a specifier names (NodeNext: `./x.js` is `x.ts`). */
export function resolveSpecifier(from: string, spec: string): string {
  const target = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  return target.replace(/\.js$/, '.ts').replace(/\.mjs$/, '.mts');
}

/** Every .ts file under `dir` (repository-relative to `root`). */
export function tsFiles(root: string, dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(r);
    }
  };
  walk(dir);
  return out.sort();
}

export function importEdges(files: Map<string, string>): ImportEdge[] {
  return [...files].flatMap(([from, text]) => specifiers(text).map((spec) => ({ from, to: resolveSpecifier(from, spec), spec })));
}

export function readTree(root: string, dirs: string[]): Map<string, string> {
  return new Map(dirs.flatMap((d) => tsFiles(root, d)).map((f) => [f, readFileSync(path.join(root, f), 'utf8')]));
}

/**
 * A room: a folder (ends in '/') or a file, on a floor. Imports may only go to a lower floor (or
 * stay in their room); `only` narrows where a room may import from; `apart` lists sub-rooms of
 * one room that must not import each other (two formats, two runtimes).
 */
export interface Room {
  path: string;
  floor: number;
  only?: string[];
}

export interface FloorTable {
  rooms: Room[];
  apart: [string, string][];
  /** Files that are a node of their own in the folder graph (entry points), not part of their folder. */
  entries: (file: string) => boolean;
}

export function roomOf(table: FloorTable, file: string): Room | undefined {
  return table.rooms.filter((r) => file === r.path || (r.path.endsWith('/') && file.startsWith(r.path))).sort((a, b) => b.path.length - a.path.length)[0];
}

/** Imports that leave their room for one on the same or a higher floor, or break `only`/`apart`. */
export function wrongWay(table: FloorTable, edges: ImportEdge[]): string[] {
  const out: string[] = [];
  for (const e of edges) {
    const a = roomOf(table, e.from);
    const b = roomOf(table, e.to);
    if (!a) {
      out.push(`${e.from}: in no room of the floor table (add its folder)`);
      continue;
    }
    if (!b) {
      out.push(`${e.from} imports ${e.to} ('${e.spec}'), which is in no room of the floor table`);
      continue;
    }
    const why = a !== b && b.floor >= a.floor ? `${b.path} is ${b.floor > a.floor ? 'above' : 'beside'} ${a.path}`
      : a.only && !a.only.some((p) => e.to === p || (p.endsWith('/') && e.to.startsWith(p))) ? `${a.path} may only import ${a.only.join(', ')}`
        : table.apart.some(([x, y]) => (e.from.startsWith(x) && e.to.startsWith(y)) || (e.from.startsWith(y) && e.to.startsWith(x))) ? 'the two are kept apart'
          : null;
    if (why) out.push(`${e.from} imports ${e.to}: ${why}`);
  }
  return [...new Set(out)];
}

/** Cycles between folders (strongly connected groups of more than one), each as its sorted folders. */
export function folderCycles(table: FloorTable, edges: ImportEdge[]): string[][] {
  const node = (f: string) => (table.entries(f) ? f : path.posix.dirname(f));
  const graph = new Map<string, Set<string>>();
  for (const e of edges) {
    const a = node(e.from);
    const b = node(e.to);
    if (a === b) continue;
    if (!graph.has(a)) graph.set(a, new Set());
    graph.get(a)!.add(b);
  }
  // Tarjan's strongly connected components.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1) groups.push(group.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return groups;
}
