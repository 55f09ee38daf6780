/**
 * Lattice shapes for 3x3 kernels (Sun, Ozay & Okatani, ECCV 2016, and relatives).
 *
 * A mask is a 9-bit integer: bit p is kernel position p, numbered row-major
 * (p = 3 * row + column; 0 is top-left, 4 the centre, 8 bottom-right), the order of the last two
 * axes of an ONNX OIHW weight. Written out, a mask reads row by row: "010/111/010".
 */
import { KpruneError } from '../errors.js';
import type { Mask } from '../model/conv.js';

export type { Mask };

export const FULL_MASK: Mask = 0b111_111_111;
export const CENTRE = 4;

/** The named fixed shapes. `qh` (a cycle) and `auto` (a choice) are shape specs, not masks. */
export const NAMED_SHAPES = {
  full: '111/111/111',
  cross: '010/111/010',
  x: '101/010/101',
  // The four base orientations of the authors' quasi-hexagonal kernels (7 of 9 positions).
  'qh-right': '110/111/110',
  'qh-left': '011/111/011',
  'qh-up': '010/111/111',
  'qh-down': '111/111/010',
  // The variants of the same code that drop two opposite corners.
  'qh-cw': '011/111/110',
  'qh-ccw': '110/111/011',
  // Thinner shapes, mostly for `auto` under tight budgets: a layer can give up more than 4 of 9.
  'line-v': '010/010/010',
  'line-h': '000/111/000',
  centre: '000/010/000',
} as const;

export type NamedShape = keyof typeof NAMED_SHAPES;

export const NAMED_SHAPE_NAMES = Object.keys(NAMED_SHAPES) as NamedShape[];

/** The paper's scheme: the four orientations in turn, one per 3x3 layer in topological order. */
export const QH_CYCLE: readonly NamedShape[] = ['qh-right', 'qh-left', 'qh-up', 'qh-down'];

/** Shapes `auto` may choose from. */
export const AUTO_CANDIDATES: readonly NamedShape[] = [
  'full', 'qh-right', 'qh-left', 'qh-up', 'qh-down', 'qh-cw', 'qh-ccw', 'cross', 'x', 'line-v', 'line-h', 'centre',
];

/** A shape as the user asks for it. */
export type ShapeSpec =
  | { kind: 'fixed'; name: string; mask: Mask }
  | { kind: 'cycle'; name: 'qh'; shapes: readonly NamedShape[] }
  | { kind: 'auto'; name: 'auto' };

export function maskHas(mask: Mask, position: number): boolean {
  return ((mask >> position) & 1) === 1;
}

export function maskCount(mask: Mask): number {
  let n = 0;
  for (let p = 0; p < 9; p++) if (maskHas(mask, p)) n++;
  return n;
}

export function maskPositions(mask: Mask): number[] {
  const out: number[] = [];
  for (let p = 0; p < 9; p++) if (maskHas(mask, p)) out.push(p);
  return out;
}

export function maskToString(mask: Mask): string {
  let s = '';
  for (let p = 0; p < 9; p++) {
    if (p > 0 && p % 3 === 0) s += '/';
    s += maskHas(mask, p) ? '1' : '0';
  }
  return s;
}

const CUSTOM_MASK = /^[01]{3}\/[01]{3}\/[01]{3}$/;

/** Parses "010/111/010". The centre must be kept: a kernel without it is no longer centred. */
export function parseMask(text: string): Mask {
  const t = text.trim();
  if (!CUSTOM_MASK.test(t)) {
    throw new KpruneError('bad-shape', `malformed mask "${text}"`, {
      suggestion: 'write three rows of three 0/1 digits separated by "/", e.g. 010/111/010',
    });
  }
  let mask = 0;
  const digits = t.replace(/\//g, '');
  for (let p = 0; p < 9; p++) if (digits[p] === '1') mask |= 1 << p;
  if (!maskHas(mask, CENTRE)) {
    throw new KpruneError('bad-shape', `mask "${text}" drops the centre position`, {
      suggestion: 'the centre (middle digit of the middle row) must be 1',
    });
  }
  return mask;
}

export function isNamedShape(name: string): name is NamedShape {
  return Object.prototype.hasOwnProperty.call(NAMED_SHAPES, name);
}

export function namedMask(name: NamedShape): Mask {
  return parseMask(NAMED_SHAPES[name]);
}

/** The name of a mask if it is one of the named shapes, else its written form. */
export function maskName(mask: Mask): string {
  for (const name of NAMED_SHAPE_NAMES) if (namedMask(name) === mask) return name;
  return maskToString(mask);
}

/** Parses a `--shape` value: a named shape, `qh`, `auto`, or a custom mask. */
export function parseShapeSpec(text: string): ShapeSpec {
  const t = text.trim();
  if (t === 'qh') return { kind: 'cycle', name: 'qh', shapes: QH_CYCLE };
  if (t === 'auto') return { kind: 'auto', name: 'auto' };
  if (isNamedShape(t)) return { kind: 'fixed', name: t, mask: namedMask(t) };
  if (t.includes('/')) return { kind: 'fixed', name: t, mask: parseMask(t) };
  throw new KpruneError('bad-shape', `unknown shape "${text}"`, {
    suggestion: `use one of ${[...NAMED_SHAPE_NAMES, 'qh', 'auto'].join(', ')} or a mask such as 010/111/010`,
  });
}

/** Draws a mask as three rows, kept positions as `#`, dropped as `.`. */
export function drawMask(mask: Mask, on = '#', off = '.'): string[] {
  const rows: string[] = [];
  for (let r = 0; r < 3; r++) {
    let row = '';
    for (let c = 0; c < 3; c++) row += (maskHas(mask, 3 * r + c) ? on : off) + (c < 2 ? ' ' : '');
    rows.push(row);
  }
  return rows;
}
