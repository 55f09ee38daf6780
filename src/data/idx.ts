/**
 * IDX files (the MNIST family's format): a big-endian magic 0x0000TTNN (TT = element type, NN =
 * number of dims), NN big-endian uint32 sizes, then the elements. Only unsigned bytes (TT = 0x08)
 * are used by image data sets. Gzipped files are recognised by their first bytes, not their name,
 * and inflated as a stream only as far as the header declares, once the data limit allows it.
 */
import { KpruneError } from '../errors.js';
import { readDeclared } from './declared-read.js';
import { readHead } from './read-file.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;

export async function readIdxFile(file: string, rank: 1 | 3): Promise<IdxArray> {
  const { head, size } = await readHead(file, 2);
  const compression = isGzip(head) ? 'gzip' : 'none';
  const bytes = await readDeclared(file, { start: 0, end: size, compression }, (h) => idxHeader(h, rank, file)?.total, `the IDX ${rank === 3 ? 'images' : 'labels'} file`);
  return parseIdx(bytes, rank, file);
}

/** The dims and total bytes (header and data) the header declares; undefined while `bytes` is shorter than the header. */
function idxHeader(bytes: Uint8Array, rank: 1 | 3, file: string): { dims: number[]; header: number; total: number } | undefined {
  if (bytes.length < 4) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const expected = (UBYTE << 8) | rank;
  if (magic !== expected) {
    const what = rank === 3 ? 'images (idx3)' : 'labels (idx1)';
    throw new KpruneError('bad-data', `bad IDX magic number 0x${hex(magic)} (expected 0x${hex(expected)} for ${what})`, { file });
  }
  const header = 4 + 4 * rank;
  if (bytes.length < header) return undefined;
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  return { dims, header, total: header + dims.reduce((a, b) => a * b, 1) };
}

/** Parses IDX bytes (already inflated). */
export function parseIdx(bytes: Uint8Array, rank: 1 | 3, file: string): IdxArray {
  if (bytes.length < 4) throw new KpruneError('bad-data', `truncated IDX file: ${bytes.length} bytes, not even a magic number`, { file });
  const h = idxHeader(bytes, rank, file);
  if (h === undefined) throw new KpruneError('bad-data', `truncated IDX file: the header needs ${4 + 4 * rank} bytes, the file has ${bytes.length}`, { file });
  const size = h.total - h.header;
  if (bytes.length < h.total) {
    throw new KpruneError('bad-data', `truncated IDX file: the header says ${h.dims.join(' x ')} = ${size} bytes of data, the file has ${bytes.length - h.header}`, { file });
  }
  return { dims: h.dims, data: bytes.subarray(h.header, h.total) };
}

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

const hex = (n: number): string => n.toString(16).padStart(8, '0');
