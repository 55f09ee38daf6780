/**
 * IDX files (the MNIST family's format): a big-endian magic 0x0000TTNN (TT = element type, NN =
 * number of dims), NN big-endian uint32 sizes, then the elements. Only unsigned bytes (TT = 0x08)
 * are used by image data sets. Gzipped files are recognised by their first bytes, not their name.
 */
import { gunzipSync } from 'node:zlib';
import { KpruneError } from '../errors.js';
import { readBytes } from './read-file.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;

export async function readIdxFile(file: string, rank: 1 | 3): Promise<IdxArray> {
  return parseIdx(await readBytes(file), rank, file);
}

export function parseIdx(raw: Uint8Array, rank: 1 | 3, file: string): IdxArray {
  const bytes = isGzip(raw) ? gunzip(raw, file) : raw;
  const what = rank === 3 ? 'images (idx3)' : 'labels (idx1)';
  if (bytes.length < 4) throw new KpruneError('bad-data', `truncated IDX file: ${bytes.length} bytes, not even a magic number`, { file });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const expected = (UBYTE << 8) | rank;
  if (magic !== expected) {
    throw new KpruneError('bad-data', `bad IDX magic number 0x${hex(magic)} (expected 0x${hex(expected)} for ${what})`, { file });
  }
  const header = 4 + 4 * rank;
  if (bytes.length < header) throw new KpruneError('bad-data', `truncated IDX file: the header needs ${header} bytes, the file has ${bytes.length}`, { file });
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length - header < size) {
    throw new KpruneError('bad-data', `truncated IDX file: the header says ${dims.join(' x ')} = ${size} bytes of data, the file has ${bytes.length - header}`, { file });
  }
  return { dims, data: bytes.subarray(header, header + size) };
}

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

function gunzip(b: Uint8Array, file: string): Uint8Array {
  try {
    return gunzipSync(b);
  } catch (e) {
    throw new KpruneError('bad-data', `corrupt or truncated gzip data: ${(e as Error).message}`, { file, cause: e });
  }
}

const hex = (n: number): string => n.toString(16).padStart(8, '0');
