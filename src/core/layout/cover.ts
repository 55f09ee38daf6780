/**
 * Exact covers of a 3x3 mask by rectangular (possibly dilated) kernels, for the decomposed layout:
 * a shaped 3x3 convolution becomes a sum of smaller convolutions whose weights are exactly the kept
 * positions. A piece takes rows {r0, r0 + rStep, ...} and columns {c0, c0 + cStep, ...}, each an
 * arithmetic progression inside 0..2, so one Conv with kernel rCount x cCount and dilation
 * (rStep, cStep) times the original computes it. Covers are computed, not tabulated, so any custom
 * mask works.
 */
import { Mask, maskHas } from '../lattice.js';

export interface Piece {
  r0: number;
  rStep: number;
  rCount: number;
  c0: number;
  cStep: number;
  cCount: number;
  /** The 3x3 positions covered, row-major within the piece (the order its kernel stores them). */
  positions: number[];
}

/** Per side, how far a piece's window can start inside the original's without cropping the input. */
export interface CoverGeometry {
  /** Original pads [top, left, bottom, right] and dilations [h, w]. */
  pads: [number, number, number, number];
  dilations: [number, number];
}

function progressions(): { start: number; step: number; count: number; members: number[] }[] {
  const out = [];
  for (let start = 0; start < 3; start++) {
    out.push({ start, step: 1, count: 1, members: [start] });
  }
  out.push({ start: 0, step: 1, count: 2, members: [0, 1] });
  out.push({ start: 1, step: 1, count: 2, members: [1, 2] });
  out.push({ start: 0, step: 2, count: 2, members: [0, 2] });
  out.push({ start: 0, step: 1, count: 3, members: [0, 1, 2] });
  return out;
}

/** Every rectangle that lies inside the mask. */
export function rectanglesIn(mask: Mask): Piece[] {
  const pieces: Piece[] = [];
  for (const r of progressions()) {
    for (const c of progressions()) {
      const positions: number[] = [];
      for (const row of r.members) for (const col of c.members) positions.push(3 * row + col);
      if (positions.every((p) => maskHas(mask, p))) {
        pieces.push({ r0: r.start, rStep: r.step, rCount: r.count, c0: c.start, cStep: c.step, cCount: c.count, positions });
      }
    }
  }
  return pieces;
}

/** True when computing the piece needs the input cropped (a negative pad) on some side. */
export function needsCrop(p: Piece, g: CoverGeometry): boolean {
  const [pt, pl, pb, pr] = g.pads;
  const [dh, dw] = g.dilations;
  const r1 = p.r0 + p.rStep * (p.rCount - 1);
  const c1 = p.c0 + p.cStep * (p.cCount - 1);
  return pt - p.r0 * dh < 0 || pl - p.c0 * dw < 0 || pb - (2 - r1) * dh < 0 || pr - (2 - c1) * dw < 0;
}

/**
 * A minimal exact cover: disjoint pieces whose union is the mask, fewest pieces first, then
 * fewest pieces that need the input cropped. Depth-first over the (at most 9) positions. `allow`
 * restricts the pieces (a runtime that cannot dilate some convolutions, say); with no cover from
 * the allowed pieces, the result is empty.
 */
export function minimalCover(mask: Mask, g: CoverGeometry, allow: (p: Piece) => boolean = () => true): Piece[] {
  const rects = rectanglesIn(mask).filter(allow);
  const all: number[] = [];
  for (let p = 0; p < 9; p++) if (maskHas(mask, p)) all.push(p);
  let best: Piece[] | null = null;
  let bestScore = Infinity;
  const score = (ps: Piece[]) => ps.length + 0.25 * ps.filter((p) => needsCrop(p, g)).length;
  const search = (covered: Set<number>, chosen: Piece[]) => {
    if (chosen.length + (covered.size < all.length ? 1 : 0) > bestScore) return;
    const next = all.find((p) => !covered.has(p));
    if (next === undefined) {
      const s = score(chosen);
      if (s < bestScore) {
        bestScore = s;
        best = [...chosen];
      }
      return;
    }
    // The first uncovered position must be in some piece: branch on the pieces containing it.
    for (const r of rects) {
      if (!r.positions.includes(next) || r.positions.some((p) => covered.has(p))) continue;
      for (const p of r.positions) covered.add(p);
      chosen.push(r);
      search(covered, chosen);
      chosen.pop();
      for (const p of r.positions) covered.delete(p);
    }
  };
  search(new Set(), []);
  return best ?? [];
}
