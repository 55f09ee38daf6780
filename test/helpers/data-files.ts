/** Small data files written by hand for the data-module tests: PNG, JPEG, .npy, .npz, IDX. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

/** A PNG from interleaved pixels with 1 (written as a gray PNG), 3 or 4 channels. */
export function pngBytes(width: number, height: number, channels: 1 | 3 | 4, pixels: ArrayLike<number>): Buffer {
  const png = new PNG({ width, height });
  for (let p = 0; p < width * height; p++) {
    for (let k = 0; k < 3; k++) png.data[p * 4 + k] = pixels[p * channels + (channels === 1 ? 0 : k)];
    png.data[p * 4 + 3] = channels === 4 ? pixels[p * 4 + 3] : 255;
  }
  return PNG.sync.write(png, { colorType: channels === 1 ? 0 : channels === 3 ? 2 : 6 });
}

/** A JPEG of one solid RGB colour (solid blocks survive compression almost exactly). */
export function jpegBytes(width: number, height: number, rgb: [number, number, number], quality = 100): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let p = 0; p < width * height; p++) data.set([...rgb, 255], p * 4);
  return jpeg.encode({ width, height, data }, quality).data;
}

export type NpyDescr = '<f4' | '<f8' | '|u1' | '<i4' | '<i8' | '>f4' | '<f2';

/** A .npy (format version 1.0) with the header padded to 64 bytes, as numpy writes it. */
export function npyBytes(descr: NpyDescr, shape: number[], values: ArrayLike<number>, fortran = false): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const size = Number(descr.slice(2));
  const data = new DataView(new ArrayBuffer(values.length * size));
  const little = descr[0] !== '>';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    switch (descr.slice(1)) {
      case 'f4': data.setFloat32(i * 4, v, little); break;
      case 'f8': data.setFloat64(i * 8, v, true); break;
      case 'u1': data.setUint8(i, v); break;
      case 'i4': data.setInt32(i * 4, v, true); break;
      case 'i8': data.setBigInt64(i * 8, BigInt(v), true); break;
      case 'f2': data.setUint16(i * 2, 0, true); break;
    }
  }
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, ...Buffer.from('NUMPY'), 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(new Uint8Array(data.buffer), 10 + header.length);
  return out;
}

export function npzBytes(arrays: Record<string, Uint8Array>, compressed = true): Uint8Array {
  const entries = Object.fromEntries(Object.entries(arrays).map(([name, bytes]) => [`${name}.npy`, bytes]));
  return zipSync(entries, { level: compressed ? 6 : 0 });
}

/** A gzipped IDX file of unsigned bytes; magic defaults to the one its rank calls for. */
export function idxGz(dims: number[], data: ArrayLike<number>, magic = 0x0800 | dims.length): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return gzipSync(Buffer.concat([header, Buffer.from(Array.from(data))]));
}

/** Writes bytes to dir/rel, creating folders. Returns the full path. */
export function put(dir: string, rel: string, bytes: Uint8Array | string): string {
  const file = path.join(dir, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, bytes);
  return file;
}
