/**
 * NumPy .npy and .npz files. The .npy format (numpy/lib/format.py): "\x93NUMPY", major and minor
 * version bytes, a little-endian header length (2 bytes in version 1, 4 in versions 2 and 3), then
 * a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, 28, 28), } padded
 * with spaces, then the raw elements. A .npz is a zip of such files named "<array>.npy".
 */
import { unzipSync } from 'fflate';
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

/** name: the array's name inside an .npz, for messages. */
export function parseNpy(bytes: Uint8Array, file: string, name?: string): NdArray {
  const what = name === undefined ? '' : `array ${name}: `;
  const bad = (msg: string): KpruneError => new KpruneError('bad-data', `${what}${msg}`, { file });
  if (!isNpy(bytes)) throw bad('not a .npy file (no \\x93NUMPY magic)');
  const major = bytes[6];
  const lenBytes = major === 1 ? 2 : major === 2 || major === 3 ? 4 : 0;
  if (lenBytes === 0) throw bad(`unknown .npy format version ${major}`);
  if (bytes.length < 8 + lenBytes) throw bad('truncated .npy header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = lenBytes === 2 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes + headerLen;
  if (bytes.length < start) throw bad('truncated .npy header');
  const header = new TextDecoder().decode(bytes.subarray(8 + lenBytes, start));

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw bad(`unsupported .npy header ${header.trim()}`);
  if (fortran === 'True') throw bad('fortran_order arrays are not supported; save a C-order array (np.ascontiguousarray)');
  const byteOrder = descr[0];
  const type = DTYPES[descr.slice(1)];
  if (type === undefined || !['<', '>', '|', '='].includes(byteOrder)) {
    throw bad(`unsupported dtype ${descr}; expected float32, float64, uint8, int32 or int64`);
  }
  if (byteOrder === '>' && type.size > 1) throw bad(`big-endian dtype ${descr} is not supported; save it little-endian (x.astype('<${descr.slice(1)}'))`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw bad(`bad shape (${shapeText})`);
  const count = shape.reduce((a, b) => a * b, 1);
  const need = count * type.size;
  if (bytes.length - start < need) throw bad(`truncated .npy data: shape (${shape.join(', ')}) ${type.dtype} needs ${need} bytes, the file has ${bytes.length - start}`);
  return { dtype: type.dtype, shape, data: decode(view, start, count, type.dtype, bad) };
}

/** The arrays of an .npz, parsed on demand; undefined for a missing name. */
export function parseNpz(bytes: Uint8Array, file: string): { names: string[]; get(name: string): NdArray | undefined } {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (e) {
    throw new KpruneError('bad-data', `not a readable .npz (zip) file: ${(e as Error).message}`, { file, cause: e });
  }
  const names = Object.keys(entries).filter((n) => n.endsWith('.npy')).map((n) => n.slice(0, -4));
  return {
    names,
    get: (name) => (entries[`${name}.npy`] === undefined ? undefined : parseNpy(entries[`${name}.npy`], file, name)),
  };
}

// Element by element through a DataView: the data need not be aligned inside the file's buffer, and
// the host need not be little-endian.
function decode(view: DataView, start: number, count: number, dtype: NpyDtype, bad: (m: string) => KpruneError): NdArray['data'] {
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(view.buffer.slice(view.byteOffset + start, view.byteOffset + start + count));
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(start + 4 * i, true);
      return out;
    }
    case 'float64': {
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
