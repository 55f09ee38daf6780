/** PNG and JPEG files to raw pixels: 1 channel for gray PNGs, else 3 (alpha is dropped, not composited). */
import path from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { KpruneError } from '../errors.js';
import type { RawImage } from './source.js';

export type ImageFormat = 'png' | 'jpeg';

/** By extension, case-insensitive; undefined for files that are not images. */
export function imageFormat(file: string): ImageFormat | undefined {
  const ext = path.extname(file).toLowerCase();
  return ext === '.png' ? 'png' : ext === '.jpg' || ext === '.jpeg' ? 'jpeg' : undefined;
}

export function decodeImage(bytes: Uint8Array, format: ImageFormat, file: string): RawImage {
  try {
    return format === 'png' ? decodePng(bytes) : decodeJpeg(bytes);
  } catch (e) {
    throw new KpruneError('bad-data', `cannot decode the ${format === 'png' ? 'PNG' : 'JPEG'} image: ${(e as Error).message}`, { file, cause: e });
  }
}

function decodePng(bytes: Uint8Array): RawImage {
  // pngjs always returns 8-bit RGBA (16-bit samples rescaled, palettes expanded).
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const { width, height, data } = png;
  // Colour types 0 and 4 are gray and gray+alpha: R = G = B, keep one.
  const gray = (png.colorType as number) === 0 || (png.colorType as number) === 4;
  return dropAlpha(data, width, height, 4, gray ? 1 : 3);
}

function decodeJpeg(bytes: Uint8Array): RawImage {
  // Gray JPEGs come out as RGB with R = G = B; converting to gray later keeps them exact.
  const { width, height, data } = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
  return { width, height, channels: 3, order: 'HWC', data };
}

function dropAlpha(data: Uint8Array, width: number, height: number, stride: number, channels: number): RawImage {
  const n = width * height;
  const out = new Uint8Array(n * channels);
  for (let p = 0; p < n; p++) for (let k = 0; k < channels; k++) out[p * channels + k] = data[p * stride + k];
  return { width, height, channels, order: 'HWC', data: out };
}
