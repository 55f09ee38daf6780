/** PNG and JPEG files to raw pixels: 1 channel for gray PNGs, else 3 (alpha is dropped, not composited). */
import { createRequire } from 'node:module';
import path from 'node:path';
import type jpegJs from 'jpeg-js';
import type pngJs from 'pngjs';
import { KpruneError } from '../errors.js';
import type { RawImage } from './source.js';
import { checkLimit, limitValue } from '../util/limits.js';

export type ImageFormat = 'png' | 'jpeg';

// The decoders load on the first image: a run without an image folder (every ONNX analysis, the
// bundled data sets) does not pay ~20 ms of start-up for them.
const load = createRequire(import.meta.url);
let png: typeof pngJs.PNG | undefined;
let jpeg: typeof jpegJs | undefined;

/** By extension, case-insensitive; undefined for files that are not images. */
export function imageFormat(file: string): ImageFormat | undefined {
  const ext = path.extname(file).toLowerCase();
  return ext === '.png' ? 'png' : ext === '.jpg' || ext === '.jpeg' ? 'jpeg' : undefined;
}

export function decodeImage(bytes: Uint8Array, format: ImageFormat, file: string): RawImage {
  // The size is checked from the header before the decoder allocates for it: a PNG of a few hundred
  // kilobytes can declare 20000 x 20000 pixels.
  const size = format === 'png' ? pngSize(bytes) : jpegSize(bytes);
  if (size !== undefined) checkLimit('imagePixels', size.width * size.height, `the image is ${size.width} x ${size.height}`, file);
  try {
    return format === 'png' ? decodePng(bytes) : decodeJpeg(bytes);
  } catch (e) {
    throw new KpruneError('bad-data', `cannot decode the ${format === 'png' ? 'PNG' : 'JPEG'} image: ${(e as Error).message}`, { file, cause: e });
  }
}

/** Width and height from a PNG's IHDR chunk, which must come first (PNG spec, 5.2 and 11.2.2). */
export function pngSize(b: Uint8Array): { width: number; height: number } | undefined {
  if (b.length < 24 || b[12] !== 0x49 || b[13] !== 0x48 || b[14] !== 0x44 || b[15] !== 0x52) return undefined; // "IHDR"
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Width and height from a JPEG's first SOF segment (ITU T.81, B.2.2), walking the segments before it. */
export function jpegSize(b: Uint8Array): { width: number; height: number } | undefined {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) return undefined;
    const marker = b[p + 1];
    if (marker === 0xff) { p++; continue; } // fill byte
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { p += 2; continue; } // no length
    if (marker === 0xd9 || marker === 0xda) return undefined; // end of image or start of scan before any SOF
    const length = (b[p + 2] << 8) | b[p + 3];
    // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC): precision, height, width.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (p + 9 > b.length) return undefined;
      return { height: (b[p + 5] << 8) | b[p + 6], width: (b[p + 7] << 8) | b[p + 8] };
    }
    p += 2 + length;
  }
  return undefined;
}

function decodePng(bytes: Uint8Array): RawImage {
  // pngjs always returns 8-bit RGBA (16-bit samples rescaled, palettes expanded).
  png ??= (load('pngjs') as typeof pngJs).PNG;
  const image = png.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const { width, height, data } = image;
  // Colour types 0 and 4 are gray and gray+alpha: R = G = B, keep one.
  const gray = (image.colorType as number) === 0 || (image.colorType as number) === 4;
  return dropAlpha(data, width, height, 4, gray ? 1 : 3);
}

function decodeJpeg(bytes: Uint8Array): RawImage {
  // Gray JPEGs come out as RGB with R = G = B; converting to gray later keeps them exact.
  // jpeg-js has its own limits (100 megapixels, 512 MB of buffers): they follow kprune's image
  // limit, checked before, so that one limit governs. Its buffers for a 3-component image (the
  // components and the output) come to under 10 bytes a pixel.
  const megapixels = limitValue('imagePixels') / 1e6;
  jpeg ??= load('jpeg-js') as typeof jpegJs;
  const { width, height, data } = jpeg.decode(bytes, {
    useTArray: true, formatAsRGBA: false, maxResolutionInMP: megapixels + 1, maxMemoryUsageInMB: Math.max(512, Math.ceil(megapixels * 10)),
  });
  return { width, height, channels: 3, order: 'HWC', data };
}

function dropAlpha(data: Uint8Array, width: number, height: number, stride: number, channels: number): RawImage {
  const n = width * height;
  const out = new Uint8Array(n * channels);
  for (let p = 0; p < n; p++) for (let k = 0; k < channels; k++) out[p * channels + k] = data[p * stride + k];
  return { width, height, channels, order: 'HWC', data: out };
}
