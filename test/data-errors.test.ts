import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { loadData, type LoadDataOptions } from '../src/data/index.js';
import { KpruneError } from '../src/errors.js';
import { tempDir } from './helpers/tmp.js';
import { idxGz, npyBytes, npzBytes, pngBytes, put } from './helpers/data-files.js';

const dir = tempDir('kprune-data-err-');
const base: LoadDataOptions = { inputDims: ['N', 1, 4, 4], calib: 2, eval: 2, seed: 0 };

/** loadData rejects with a KpruneError of this code, naming this file, with a message matching re. */
async function rejects(spec: string, code: KpruneError['code'], re: RegExp, options: Partial<LoadDataOptions> = {}, file = spec): Promise<void> {
  await assert.rejects(loadData(spec, { ...base, ...options }), (e: unknown) => {
    assert.ok(e instanceof KpruneError, `not a KpruneError: ${String(e)}`);
    assert.equal(e.code, code);
    assert.equal(e.file, file);
    assert.match(e.message, re);
    assert.ok(!e.oneLine().includes('\n'));
    return true;
  });
}

test('a missing path', async () => {
  await rejects(path.join(dir, 'nope.npy'), 'not-found', /no such file or folder/);
});

test('a folder without images, empty or with other files only', async () => {
  const empty = path.join(dir, 'empty');
  mkdirSync(empty);
  await rejects(empty, 'bad-data', /no PNG or JPEG images in the folder/);
  const other = path.join(dir, 'other');
  put(other, 'readme.txt', 'hi');
  put(other, 'cls/readme.txt', 'hi');
  await rejects(other, 'bad-data', /no PNG or JPEG images in the folder or its 1 class folders/);
});

test('an image that fails to decode is named', async () => {
  const root = path.join(dir, 'broken');
  put(root, 'good.png', pngBytes(2, 2, 1, [1, 2, 3, 4]));
  const bad = put(root, 'bad.png', 'this is not a png');
  await rejects(root, 'bad-data', /cannot decode the PNG image/, { calib: 1, eval: 1 }, bad);
  const root2 = path.join(dir, 'broken-jpeg');
  const badJpeg = put(root2, 'x.jpg', Buffer.from([0xff, 0xd8, 0xff, 0x00, 1, 2, 3]));
  await rejects(root2, 'bad-data', /cannot decode the JPEG image/, { calib: 1, eval: 0 }, badJpeg);
});

test('images mixed with class folders', async () => {
  const root = path.join(dir, 'mixed');
  put(root, 'a.png', pngBytes(1, 1, 1, [0]));
  put(root, 'cls/b.png', pngBytes(1, 1, 1, [0]));
  await rejects(root, 'bad-data', /both images \(a.png, ...\) and class folders \(cls, ...\)/);
});

test('more class folders than the model has classes', async () => {
  const root = path.join(dir, 'three');
  for (const c of ['a', 'b', 'c']) put(root, `${c}/1.png`, pngBytes(1, 1, 1, [0]));
  await rejects(root, 'bad-data', /3 class folders but the model has 2 classes/, { numClasses: 2 });
});

test('npy channels that cannot be mapped, and per-sample dims that fit nothing', async () => {
  const two = put(dir, 'two.npy', npyBytes('<f4', [1, 2, 4, 4], new Array(32).fill(0)));
  await rejects(two, 'bad-data', /x has 2 channels per sample \(per-sample dims \[2, 4, 4\]\); they cannot be mapped to the model's 3/, { inputDims: ['N', 3, 4, 4] });
  const odd = put(dir, 'odd.npy', npyBytes('<f4', [1, 9, 5, 7], new Array(315).fill(0)));
  await rejects(odd, 'bad-data', /per-sample dims \[9, 5, 7\], which match neither the model's \[3, 4, 4\] \(NCHW\) nor an image layout/, { inputDims: ['N', 3, 4, 4] });
  const flat = put(dir, 'flat.npy', npyBytes('<f4', [2, 16], new Array(32).fill(0)));
  await rejects(flat, 'bad-data', /x has shape \(2, 16\); expected \[N,H,W\]/);
});

test('labels outside the model\'s classes', async () => {
  const file = put(dir, 'labels.npz', npzBytes({ x: npyBytes('|u1', [3, 4, 4], new Array(48).fill(0)), y: npyBytes('<i8', [3], [0, 10, 1]) }));
  await rejects(file, 'bad-data', /label 10 of sample 1 is outside the model's 10 classes \[0, 10\)/, { numClasses: 10 });
  const neg = put(dir, 'neg.npz', npzBytes({ x: npyBytes('|u1', [3, 4, 4], new Array(48).fill(0)), y: npyBytes('<i4', [3], [0, -1, 1]) }));
  await rejects(neg, 'bad-data', /label -1 of sample 1 is negative/);
});

test('an npz without x, and malformed npy files', async () => {
  const noX = put(dir, 'nox.npz', npzBytes({ images: npyBytes('|u1', [1, 4, 4], new Array(16).fill(0)) }));
  await rejects(noX, 'bad-data', /no array named x \(arrays: images\)/);
  const fortran = put(dir, 'fortran.npy', npyBytes('<f4', [1, 4, 4], new Array(16).fill(0), true));
  await rejects(fortran, 'bad-data', /fortran_order arrays are not supported/);
  const big = put(dir, 'big.npy', npyBytes('>f4', [1, 4, 4], new Array(16).fill(0)));
  await rejects(big, 'bad-data', /big-endian dtype >f4/);
  const half = put(dir, 'half.npy', npyBytes('<f2', [1, 4, 4], new Array(16).fill(0)));
  await rejects(half, 'bad-data', /unsupported dtype <f2/);
  const cut = put(dir, 'cut.npy', npyBytes('<f4', [2, 4, 4], new Array(32).fill(0)).subarray(0, 140));
  await rejects(cut, 'bad-data', /truncated .npy data: shape \(2, 4, 4\) float32 needs 128 bytes, the file has 12/);
  await rejects(put(dir, 'cut-header.npy', npyBytes('<f4', [1], [0]).subarray(0, 60)), 'bad-data', /truncated .npy header/);
  const floatY = put(dir, 'floaty.npz', npzBytes({ x: npyBytes('|u1', [1, 4, 4], new Array(16).fill(0)), y: npyBytes('<f4', [1], [1]) }));
  await rejects(floatY, 'bad-data', /y has dtype float32; labels must be integers/);
  const notZip = put(dir, 'junk.npz', 'PK\x03\x04 garbage');
  await rejects(notZip, 'bad-data', /not a readable .npz/);
});

test('IDX files with a bad magic number, truncated data, or a labels count that differs', async () => {
  const magic = put(dir, 'm/x-images-idx3-ubyte.gz', idxGz([1, 4, 4], new Array(16).fill(0), 0x0801));
  await rejects(magic, 'bad-data', /bad IDX magic number 0x00000801 \(expected 0x00000803 for images \(idx3\)\)/);
  const short = put(dir, 's/x-images-idx3-ubyte.gz', idxGz([10, 4, 4], new Array(100).fill(0)));
  await rejects(short, 'bad-data', /truncated IDX file: the header says 10 x 4 x 4 = 160 bytes of data, the file has 100/);
  const images = put(dir, 'l/x-images-idx3-ubyte.gz', idxGz([2, 4, 4], new Array(32).fill(0)));
  const labels = put(dir, 'l/x-labels-idx1-ubyte.gz', idxGz([3], [0, 1, 2]));
  await rejects(images, 'bad-data', /3 labels for the 2 images/, {}, labels);
  const plain = put(dir, 'p/x-images-idx3-ubyte', Buffer.from([0, 0, 8, 3, 0, 0]));
  await rejects(plain, 'bad-data', /truncated IDX file: the header needs 16 bytes/);
});

test('files that are no data, and bad counts', async () => {
  const txt = put(dir, 'data.txt', 'hello');
  await rejects(txt, 'bad-data', /not a data file kprune reads/);
  const ok = put(dir, 'ok.npy', npyBytes('<f4', [4, 4, 4], new Array(64).fill(0)));
  await rejects(ok, 'usage', /calib sample count must be a non-negative integer, not -1/, { calib: -1 });
  // Arrays have a size of their own; a folder of images of any size does not.
  assert.equal((await loadData(ok, { ...base, inputDims: ['N', 1, 'H', 'W'] })).calib.sampleDims.join(), '1,4,4');
  const folder = path.join(dir, 'any-size');
  put(folder, 'a.png', pngBytes(3, 2, 3, new Array(18).fill(0)));
  await rejects(folder, 'usage', /dynamic image size and nothing gives one/, { inputDims: ['N', 3, 'H', 'W'] });
});
