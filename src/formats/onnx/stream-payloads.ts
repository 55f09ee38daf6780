/**
 * The one pass over the input of a streamed write. The byte-splicing writer (write.ts) walks a
 * model read with `stream` (read.ts) as it would the whole file: its image holds every byte but
 * the large payloads, at their own offsets. What it keeps as it was comes out as views into that
 * image; here each view is cut at the payloads it spans, and each payload becomes a file range,
 * copied from the input when its turn to be written comes, a few MiB at a time
 * (io/file-range.ts), its non-zero count taken as it passes. The bytes written are those the whole
 * file would give; memory holds the changed tensors, not the file.
 */
import type { FileRange } from '../../io/file-range.js';
import { OnnxModel } from './read.js';
import { recordStoredNonzero } from './inventory.js';
import { FLOAT_TYPES, TensorRef, bytesPerElement, elementCount } from './tensor.js';
import { countNonzeroStored } from './tensor-bytes.js';

/**
 * Counts a tensor's stored non-zeros from the blocks of its bytes as they are copied, and records
 * the count once the last byte has passed (only then: a copy that fails half-way records nothing).
 * Undefined where the blocks cannot be counted this way (not a float type, or a size that does not
 * match the shape, which the inventory then reports as it always did).
 */
export function countAsCopied(model: OnnxModel, ref: TensorRef | undefined, length: number): ((block: Uint8Array) => void) | undefined {
  if (!ref || !FLOAT_TYPES.has(ref.dataType) || length !== elementCount(ref.dims) * bytesPerElement(ref.dataType)) return undefined;
  let seen = 0;
  let nonzero: number | null = 0;
  return (block) => {
    const n = nonzero === null ? null : countNonzeroStored(block, ref.dataType);
    nonzero = n === null || nonzero === null ? null : nonzero + n;
    seen += block.length;
    if (seen === length && nonzero !== null) recordStoredNonzero(model, ref, nonzero);
  };
}

/**
 * The chunks with every view into the model's image cut at the payloads it spans, each payload a
 * file range. A view that starts or ends inside a payload is a bug (the writer splices whole
 * fields): it throws rather than write the image's zeros.
 */
export function streamPayloads(model: OnnxModel, chunks: Uint8Array[]): (Uint8Array | FileRange)[] {
  const image = model.image;
  const payloads = model.payloads ?? [];
  if (!image || payloads.length === 0) return chunks;
  const byOffset = new Map<number, TensorRef>();
  for (const ref of model.constants.values()) if (ref.inFile) byOffset.set(ref.inFile.offset, ref);
  const out: (Uint8Array | FileRange)[] = [];
  for (const c of chunks) {
    if (c.buffer !== image.buffer || c.length === 0) {
      out.push(c);
      continue;
    }
    const start = c.byteOffset - image.byteOffset;
    const end = start + c.length;
    let at = start;
    for (let k = firstEndingAfter(payloads, start); k < payloads.length && payloads[k].offset < end; k++) {
      const p = payloads[k];
      if (p.offset < start || p.offset + p.length > end) {
        throw new Error(`internal: a chunk [${start}, ${end}) of the output cuts the payload at [${p.offset}, ${p.offset + p.length}) of ${model.path}`);
      }
      if (p.offset > at) out.push(image.subarray(at, p.offset));
      out.push({
        kind: 'file-range', file: model.path, offset: p.offset, length: p.length, stamp: model.stamp!,
        onBlock: countAsCopied(model, byOffset.get(p.offset), p.length),
      });
      at = p.offset + p.length;
    }
    if (end > at) out.push(image.subarray(at, end));
  }
  return out;
}

/** The index of the first payload ending after `pos` (payloads are in file order). */
function firstEndingAfter(payloads: { offset: number; length: number }[], pos: number): number {
  let lo = 0;
  let hi = payloads.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (payloads[mid].offset + payloads[mid].length <= pos) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
