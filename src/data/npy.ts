/**
 * NumPy .npy and .npz files. The .npy format (numpy/lib/format.py): "\x93NUMPY", major and minor
 * version bytes, a little-endian header length (2 bytes in version 1, 4 in versions 2 and 3), then
 * a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, 28, 28), } padded
 * with spaces, then the raw elements. A .npz is a zip of such files named "<array>.npy".
 */
import { endianness } from 'node:os';
import { KpruneError } from '../errors.js';

export type NpyDtype = 'float32' | 'float64' | 'uint8' | 'int32' | 'int64';

export interface NdArray {
  dtype: NpyDtype;
  shape: number[];
  /** int64 arrives as float64 numbers (checked to be exact). */
  data: Float32Array | Float64Array | Uint8Array | Int32Array;
}

const DTYPES: Record<string, { dtype: NpyDtype; size: number }> = {
  f4: { dtype: 'float32', size: 4 },
  f8: { dtype: 'float64', size: 8 },
  u1: { dtype: 'uint8', size: 1 },
  i4: { dtype: 'int32', size: 4 },
  i8: { dtype: 'int64', size: 8 },
};

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

export function isNpy(b: Uint8Array): boolean {
  return MAGIC.every((m, i) => b[i] === m);
}

export function isZip(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;
}

interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  count: number;
  /** Where the elements start. */
  start: number;
  /** Header and elements: the bytes the file must have. */
  total: number;
}

/** The header, or undefined when `bytes` is too short to hold it all (a head read so far). */
function npyHeader(bytes: Uint8Array, bad: (msg: string) => KpruneError): NpyHeader | undefined {
  if (bytes.length < MAGIC.length) return undefined;
  if (!isNpy(bytes)) throw bad('not a .npy file (no \\x93NUMPY magic)');
  if (bytes.length < 8) return undefined;
  const major = bytes[6];
  const lenBytes = major === 1 ? 2 : major === 2 || major === 3 ? 4 : 0;
  if (lenBytes === 0) throw bad(`unknown .npy format version ${major}`);
  if (bytes.length < 8 + lenBytes) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = lenBytes === 2 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes + headerLen;
  if (bytes.length < start) return undefined;
  const header = new TextDecoder().decode(bytes.subarray(8 + lenBytes, start));

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw bad(`unsupported .npy header ${header.trim().slice(0, 200)}`);
  if (fortran === 'True') throw bad('fortran_order arrays are not supported; save a C-order array (np.ascontiguousarray)');
  const byteOrder = descr[0];
  const type = DTYPES[descr.slice(1)];
  if (type === undefined || !['<', '>', '|', '='].includes(byteOrder)) {
    throw bad(`unsupported dtype ${descr}; expected float32, float64, uint8, int32 or int64`);
  }
  if (byteOrder === '>' && type.size > 1) throw bad(`big-endian dtype ${descr} is not supported; save it little-endian (x.astype('<${descr.slice(1)}'))`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(`bad shape (${shapeText.slice(0, 200)})`);
  const count = shape.reduce((a, b) => a * b, 1);
  return { dtype: type.dtype, shape, count, start, total: start + count * type.size };
}

const badArray = (file: string, name?: string) => (msg: string): KpruneError => new KpruneError('bad-data', `${name === undefined ? '' : `array ${name}: `}${msg}`, { file });

/**
 * For readDeclared: the bytes an .npy declares (header and elements), from its first bytes. The
 * declared size is what gets checked against the data limit before anything of that size exists.
 */
export function npyDeclaredSize(file: string, name?: string): (head: Uint8Array) => number | undefined {
  return (head) => npyHeader(head, badArray(file, name))?.total;
}

/** name: the array's name inside an .npz, for messages. */
export function parseNpy(bytes: Uint8Array, file: string, name?: string): NdArray {
  const bad = badArray(file, name);
  const h = npyHeader(bytes, bad);
  if (h === undefined) throw bad(!isNpy(bytes) ? 'not a .npy file (no \\x93NUMPY magic)' : 'truncated .npy header');
  const need = h.total - h.start;
  if (bytes.length < h.total) throw bad(`truncated .npy data: shape (${h.shape.join(', ')}) ${h.dtype} needs ${need} bytes, the file has ${bytes.length - h.start}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { dtype: h.dtype, shape: h.shape, data: decode(view, h.start, h.count, h.dtype, bad) };
}

const LITTLE = endianness() === 'LE';

// Element by element through a DataView: the data need not be aligned inside the file's buffer, and
// the host need not be little-endian.
function decode(view: DataView, start: number, count: number, dtype: NpyDtype, bad: (m: string) => KpruneError): NdArray['data'] {
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(view.buffer, view.byteOffset + start, count);
    case 'float32': {
      // In place when the host is little-endian and the data aligned (numpy pads headers to 64
      // bytes): a second copy of a large array is what a data limit is meant to prevent.
      if (LITTLE && (view.byteOffset + start) % 4 === 0) return new Float32Array(view.buffer, view.byteOffset + start, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(start + 4 * i, true);
      return out;
    }
    case 'float64': {
      if (LITTLE && (view.byteOffset + start) % 8 === 0) return new Float64Array(view.buffer, view.byteOffset + start, count);
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(start + 8 * i, true);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(start + 4 * i, true);
      return out;
    }
    case 'int64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) {
        const v = view.getBigInt64(start + 8 * i, true);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw bad(`int64 value ${v} at element ${i} is too large`);
        out[i] = Number(v);
      }
      return out;
    }
  }
}
