/**
 * Resource limits (src/util/limits.ts) on data, in-process: declared sizes are checked before
 * anything of that size is allocated or inflated, inflation stops at what the header declares, only
 * the .npz entries that are used are read, and each limit moves with its environment variable.
 * Built from files of a few kilobytes: nothing here allocates more than a few megabytes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadData, type LoadDataOptions } from '../src/data/index.js';
import { jpegSize, pngSize } from '../src/data/image-decode.js';
import { listZip } from '../src/data/zip.js';
import { KpruneError } from '../src/errors.js';
import { LIMITS, checkLimit, limitValue } from '../src/util/limits.js';
import { idxGz, jpegBytes, npyBytes, pngBytes, put } from './helpers/data-files.js';
import { idxDeclaring, npyDeclaring, npz, npzBomb, pngDeclaring } from './helpers/hostile.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

const dir = tempDir('kprune-limits-');
const base: LoadDataOptions = { inputDims: ['N', 1, 4, 4], calib: 1, eval: 1, seed: 0 };

/** Runs f with environment variables set, restoring them after. */
async function withEnv<T>(vars: Record<string, string>, f: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await f();
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
}

async function refusedByLimit(spec: string, env: string, re: RegExp, file = spec, options: Partial<LoadDataOptions> = {}): Promise<void> {
  await assert.rejects(loadData(spec, { ...base, ...options }), (e: unknown) => {
    assert.ok(e instanceof KpruneError, String(e));
    assert.equal(e.code, 'limit');
    assert.equal(e.file, file);
    assert.match(e.message, re);
    assert.match(e.message, new RegExp(`\\(${env}\\)`));
    assert.match(e.oneLine(), new RegExp(`raise it: ${env}=`));
    return true;
  });
}

test('each limit has a default, an environment variable that replaces it, and a clear error', async () => {
  assert.deepEqual(Object.fromEntries(Object.entries(LIMITS).map(([k, v]) => [k, [v.env, v.default]])), {
    imagePixels: ['KPRUNE_MAX_IMAGE_PIXELS', 89_478_485],
    dataBytes: ['KPRUNE_MAX_DATA_BYTES', 1024 ** 3],
    inputElements: ['KPRUNE_MAX_INPUT_ELEMENTS', 2 ** 24],
    tensorBytes: ['KPRUNE_MAX_TENSOR_BYTES', 2 * 1024 ** 3],
  });
  await withEnv({ KPRUNE_MAX_IMAGE_PIXELS: '1e3' }, async () => assert.equal(limitValue('imagePixels'), 1000));
  for (const bad of ['0', '-5', 'lots', 'NaN']) {
    await withEnv({ KPRUNE_MAX_DATA_BYTES: bad }, async () => assert.throws(() => limitValue('dataBytes'), /KPRUNE_MAX_DATA_BYTES=".*" is not a positive number of bytes/));
  }
  assert.doesNotThrow(() => checkLimit('imagePixels', 89_478_485, 'x'));
  assert.throws(() => checkLimit('imagePixels', 89_478_486, 'the image is 1 x 89478486', 'a.png'), (e: unknown) => e instanceof KpruneError
    && e.oneLine() === 'a.png: the image is 1 x 89478486: 89,478,486 pixels, over the limit of 89,478,485 (KPRUNE_MAX_IMAGE_PIXELS) (if that is intended, raise it: KPRUNE_MAX_IMAGE_PIXELS=<pixels> in the environment)');
});

test('.npz: only x and y are read; an unused entry, even a broken one claiming 2 GiB, costs nothing', async () => {
  const file = put(dir, 'unused.npz', npz({ x: npyBytes('|u1', [2, 4, 4], new Array(32).fill(3)), junk: npyBytes('|u1', [4096], new Array(4096).fill(1)) }));
  const bytes = readFileSync(file);
  const junk = (await listZip(file)).find((e) => e.name === 'junk.npy')!;
  bytes.fill(0xff, junk.stretch.start, junk.stretch.end); // not deflate any more
  // Its central-directory entry now claims 2 GiB uncompressed.
  const cd = bytes.lastIndexOf(Buffer.from('junk.npy')) - 46;
  bytes.writeUInt32LE(0x80000000, cd + 24);
  writeFileSync(file, bytes);
  const split = await loadData(file, base);
  assert.equal(split.calib.count + split.eval.count, 2);
});

test('.npz: a zip bomb is refused at its header; inflation stops at what the header declares', async () => {
  // x.npy really inflates to 64 KiB of zeros from a few hundred bytes.
  const bomb = put(dir, 'bomb.npz', npzBomb([64, 32, 32]));
  assert.ok(readFileSync(bomb).length < 1000);
  await withEnv({ KPRUNE_MAX_DATA_BYTES: '60000' }, () => refusedByLimit(bomb, 'KPRUNE_MAX_DATA_BYTES', /array x declares its data as: 65,664 bytes, over the limit of 60,000/, bomb, { inputDims: ['N', 1, 32, 32] }));
  await withEnv({ KPRUNE_MAX_DATA_BYTES: '70000' }, async () => assert.equal((await loadData(bomb, { ...base, inputDims: ['N', 1, 32, 32] })).calib.count, 1));
  // A header declaring 2 samples, followed by 8 MB more zeros in the same deflate stream: read
  // under a 4 KiB limit, because only the declared 160 bytes are ever inflated.
  const header = npyDeclaring([2, 4, 4], 0);
  const entry = Buffer.concat([header, Buffer.alloc(8 << 20)]);
  const zip = put(dir, 'long.npz', npz({ x: entry }));
  await withEnv({ KPRUNE_MAX_DATA_BYTES: '4096' }, async () => assert.equal((await loadData(zip, base)).calib.count, 1));
  // The default case: a header declaring 2 GB.
  await refusedByLimit(put(dir, 'declares.npz', npz({ x: npyDeclaring([2000, 1000, 1000]) })), 'KPRUNE_MAX_DATA_BYTES', /2,000,000,128 bytes, over the limit of 1,073,741,824/);
  // A stored (np.savez) entry and a plain .npy go through the same check.
  await withEnv({ KPRUNE_MAX_DATA_BYTES: '100' }, async () => {
    await refusedByLimit(put(dir, 'stored.npz', npz({ x: npyBytes('|u1', [2, 4, 4], new Array(32).fill(1)) }, 0)), 'KPRUNE_MAX_DATA_BYTES', /array x declares its data as: 160 bytes/);
    await refusedByLimit(put(dir, 'plain.npy', npyBytes('|u1', [2, 4, 4], new Array(32).fill(1))), 'KPRUNE_MAX_DATA_BYTES', /the \.npy declares its data as: 160 bytes/);
  });
  // A deflate stream cut short is a clear error, not a hang or a crash.
  const cut = put(dir, 'cut.npz', npz({ x: npyBytes('|u1', [2, 4, 4], new Array(32).fill(1)) }));
  const b = readFileSync(cut);
  const x = (await listZip(cut))[0];
  b.fill(0, x.stretch.start + 2, x.stretch.end);
  writeFileSync(cut, b);
  await assert.rejects(loadData(cut, base), (e: unknown) => e instanceof KpruneError && e.code === 'bad-data' && e.file === cut);
});

test('gzipped IDX: the header is checked before the data is inflated; a short file is truncated, not over a limit', async () => {
  const subset = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
  await withEnv({ KPRUNE_MAX_DATA_BYTES: '100000' }, () => refusedByLimit(subset, 'KPRUNE_MAX_DATA_BYTES', /the IDX images file declares its data as: \d{1,3}(,\d{3})+ bytes, over the limit of 100,000/, subset, { inputDims: ['N', 1, 28, 28] }));
  await refusedByLimit(put(dir, 'huge-images-idx3-ubyte.gz', idxDeclaring([8_000_000, 28, 28])), 'KPRUNE_MAX_DATA_BYTES', /6,272,000,016 bytes/);
  const short = put(dir, 'short-images-idx3-ubyte.gz', idxDeclaring([100, 4, 4], 10));
  await assert.rejects(loadData(short, base), /truncated IDX file: the header says 100 x 4 x 4 = 1600 bytes of data, the file has 10/);
  const ok = put(dir, 'ok-images-idx3-ubyte.gz', idxGz([2, 4, 4], new Array(32).fill(9)));
  assert.equal((await loadData(ok, base)).calib.count, 1);
});

test('images: the size is read from the PNG or JPEG header and checked before decoding', async () => {
  assert.deepEqual(pngSize(pngDeclaring(20000, 20000, 1)), { width: 20000, height: 20000 });
  assert.deepEqual(jpegSize(jpegBytes(16, 8, [1, 2, 3])), { width: 16, height: 8 });
  assert.equal(jpegSize(Buffer.from('not a jpeg')), undefined);
  const png = put(dir, 'png/a.png', pngBytes(8, 8, 1, new Array(64).fill(5)));
  await withEnv({ KPRUNE_MAX_IMAGE_PIXELS: '63' }, () => refusedByLimit(path.join(dir, 'png'), 'KPRUNE_MAX_IMAGE_PIXELS', /the image is 8 x 8: 64 pixels, over the limit of 63/, png));
  await withEnv({ KPRUNE_MAX_IMAGE_PIXELS: '64' }, async () => assert.equal((await loadData(path.join(dir, 'png'), base)).calib.count, 1));
  const jpg = put(dir, 'jpg/a.jpg', jpegBytes(16, 8, [10, 20, 30]));
  await withEnv({ KPRUNE_MAX_IMAGE_PIXELS: '127' }, () => refusedByLimit(path.join(dir, 'jpg'), 'KPRUNE_MAX_IMAGE_PIXELS', /the image is 16 x 8: 128 pixels/, jpg, { inputDims: ['N', 3, 4, 4] }));
  // The 20000 x 20000 PNG, refused by default (its data is never inflated).
  const big = put(dir, 'big/a.png', pngDeclaring(20000, 20000, 1));
  await refusedByLimit(path.join(dir, 'big'), 'KPRUNE_MAX_IMAGE_PIXELS', /400,000,000 pixels, over the limit of 89,478,485/, big);
  // A sample size beyond the input limit (--size on a dynamic model) is refused before any sample is made.
  await refusedByLimit(path.join(dir, 'png'), 'KPRUNE_MAX_INPUT_ELEMENTS', /one sample at 1 x 100000 x 100000/, path.join(dir, 'png'), { inputDims: ['N', 1, 'H', 'W'], preprocess: { height: 100_000, width: 100_000 } });
});

test('image folders: links stay inside and each folder is read once', async () => {
  const root = path.join(dir, 'links');
  put(root, 'a/1.png', pngBytes(4, 4, 1, new Array(16).fill(1)));
  const outside = put(dir, 'outside/2.png', pngBytes(4, 4, 1, new Array(16).fill(1)));
  // A link to a file inside the folder is fine; to one outside it is not.
  symlinkSync(path.join(root, 'a/1.png'), path.join(root, 'a/same.png'));
  assert.equal((await loadData(root, base)).calib.count, 1);
  symlinkSync(path.dirname(outside), path.join(root, 'b'));
  await assert.rejects(loadData(root, base), (e: unknown) => e instanceof KpruneError && e.code === 'unsafe-path' && e.file === path.join(root, 'b') && /points outside the data folder/.test(e.message));
  rmSync(path.join(root, 'b'));
  // A class folder that links to the data folder itself, or two links to one folder.
  symlinkSync('..', path.join(root, 'a/up'));
  await assert.rejects(loadData(root, base), /"a\/up" is a folder already read/);
  rmSync(path.join(root, 'a/up'));
  mkdirSync(path.join(root, 'c'));
  symlinkSync(path.join(root, 'a'), path.join(root, 'c/again'));
  await assert.rejects(loadData(root, base), /"c\/again" is a folder already read/);
});

test('an image folder with 130,000 files in one class is listed (no stack overflow)', async () => {
  // Made on tmpfs where there is one: 130,000 files on a disk take seconds to make and remove.
  const parent = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/kprune-many-') : mkdtempSync(path.join(dir, 'many-'));
  after(() => rmSync(parent, { recursive: true, force: true }));
  const cls = path.join(parent, 'a');
  mkdirSync(cls);
  writeFileSync(path.join(cls, '0.png'), pngBytes(4, 4, 1, new Array(16).fill(1)));
  for (let i = 1; i < 130_000; i++) closeSync(openSync(path.join(cls, `${i}.png`), 'w'));
  put(parent, 'b/0.png', pngBytes(4, 4, 1, new Array(16).fill(2)));
  // The drawn samples are empty files, so decoding fails: what is tested is that listing got there.
  await assert.rejects(loadData(parent, { ...base, calib: 2, eval: 2 }), (e: unknown) => e instanceof KpruneError && /cannot decode the PNG image/.test(e.message));
});

test('empty and odd data files are clear errors', async () => {
  const cases: [string, Uint8Array | string, RegExp][] = [
    ['empty.npy', '', /not a \.npy file/],
    ['empty-images-idx3-ubyte.gz', '', /truncated IDX file: 0 bytes/],
    ['gz-images-idx3-ubyte.gz', Buffer.from([0x1f, 0x8b]), /corrupt or truncated gzip data/],
    ['empty.npz', '', /not a readable \.npz \(zip\) file: no end-of-central-directory record/],
    ['pk.npz', 'PK\x03\x04', /not a readable \.npz/],
    ['emptyx.npz', npz({ x: new Uint8Array(0) }), /array x: not a \.npy file/],
    ['header-only.npz', npz({ x: npyDeclaring([2, 4, 4], 0) }), /array x: truncated \.npy data: shape \(2, 4, 4\) uint8 needs 32 bytes, the file has 0/],
  ];
  for (const [name, bytes, re] of cases) {
    const file = put(dir, name, bytes);
    await assert.rejects(loadData(file, base), (e: unknown) => e instanceof KpruneError && e.code === 'bad-data' && e.file === file && re.test(e.message), name);
  }
  // An entry compressed with a method other than stored or deflate (bzip2 is 12).
  const file = put(dir, 'bzip2.npz', npz({ x: npyBytes('|u1', [2, 4, 4], new Array(32).fill(1)) }));
  const b = readFileSync(file);
  const cd = b.lastIndexOf(Buffer.from('x.npy')) - 46;
  b.writeUInt16LE(12, cd + 10);
  writeFileSync(file, b);
  await assert.rejects(loadData(file, base), /entry "x\.npy" uses compression method 12/);
});
