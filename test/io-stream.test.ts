/**
 * The one-pass streaming write of issue 15 (src/formats/onnx/stream-payloads.ts, src/io/file-range.ts):
 * a model pruned without a run is read without its large inline tensors and written by copying
 * them from the input file a few MiB at a time. These tests hold it to three things: the bytes are
 * exactly those of the whole-file writer (every fixture, every layout, with every tensor streamed);
 * no read ever takes more than one copy block of the input, and the input is never read whole
 * (checked by wrapping node:fs, not by timing); an input that changes under the copy is an error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { existsSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { analyze, prune } from '../src/index.js';
import { loadModel } from '../src/models/index.js';
import { loadOnnx } from '../src/models/onnx/index.js';
import { readOnnxModel } from '../src/formats/onnx/read.js';
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { layoutEdits } from '../src/formats/onnx/layouts.js';
import { writeOnnxModel } from '../src/formats/onnx/write.js';
import { layoutRequests } from '../src/pipeline/layouts.js';
import { planMasks } from '../src/core/plan.js';
import { exportModel, reshape } from '../src/pipeline/steps.js';
import { COPY_BLOCK, fileStamp } from '../src/io/file-range.js';
import { writeFilesAtomically } from '../src/io/atomic-write.js';
import { OutputTransaction } from '../src/io/transaction.js';
import { DIRECT_BLOCK, SequentialReader, openDirectForWriting } from '../src/io/direct.js';
import { KpruneError } from '../src/errors.js';
import { onnx } from '../src/formats/onnx/proto.js';
import { IO_CASES, folderDigests } from './helpers/io-cases.js';
import { convNode, floatTensor, randomFloats, valueInfo } from './helpers/onnx-builder.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

const root = path.dirname(FIXTURES);
const golden = JSON.parse(readFileSync(path.join(root, 'test', 'golden', 'io-outputs.json'), 'utf8')) as { cases: Record<string, Record<string, string>> };
const dir = tempDir('kprune-io-stream-');

for (const [i, c] of IO_CASES.filter((x) => x.input.endsWith('.onnx')).entries()) {
  test(`${c.name}: written with every tensor of 64 bytes or more streamed from the input, the bytes are those recorded`, async () => {
    const input = path.join(root, c.input);
    // The threshold low enough that nearly every tensor is a payload copied from the file.
    const lazy = await readOnnxModel(input, { lazy: true, stream: true, lazyMinBytes: 64 });
    if (lazy.externalFiles.size === 0) assert.ok(lazy.payloads!.length >= 2, 'the fixture has payloads to stream');
    const folder = path.join(dir, `fixture${i}`);
    fs.mkdirSync(folder);
    const model = await loadOnnx(input, { lazy: true, stream: true, lazyMinBytes: 64 });
    await exportModel(model, reshape(model, c.shape), path.join(folder, 'out.onnx'), c.layout);
    assert.deepEqual(folderDigests(folder), golden.cases[c.name]);
  });
}

/**
 * input[1,4,8,8] -> Conv3x3 -> Flatten -> Gemm with a [256, 12288] weight (12 MiB: three copy
 * blocks), every 7th weight zero. With `external`, every tensor lives in `w.bin`.
 */
function writeModel(folder: string, external: boolean): { file: string; gemmNonzero: number } {
  fs.mkdirSync(folder, { recursive: true });
  const n = 12288;
  const gemm = randomFloats(256 * n, 7);
  for (let k = 0; k < gemm.length; k += 7) gemm[k] = 0;
  const tensors = [
    floatTensor('w', [4, 4, 3, 3], randomFloats(144, 1)),
    floatTensor('b', [4], randomFloats(4, 2)),
    floatTensor('g', [256, n], gemm),
  ];
  if (external) {
    const blobs: Uint8Array[] = [];
    let at = 0;
    for (const t of tensors) {
      const raw = t.rawData as Uint8Array;
      t.externalData = [{ key: 'location', value: 'w.bin' }, { key: 'offset', value: String(at) }, { key: 'length', value: String(raw.length) }];
      t.dataLocation = 1;
      t.rawData = new Uint8Array(0);
      blobs.push(raw);
      at += raw.length;
    }
    writeFileSync(path.join(folder, 'w.bin'), Buffer.concat(blobs));
  }
  const model = onnx.ModelProto.encode({
    irVersion: 8,
    producerName: 'kprune-test',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'stream',
      node: [
        convNode({ name: 'conv', input: 'x', output: 'h', weight: 'w', bias: 'b' }),
        { name: 'flat', opType: 'Flatten', input: ['h'], output: ['f'] },
        { name: 'fc', opType: 'Gemm', input: ['f', 'g'], output: ['y'] },
      ],
      initializer: tensors,
      input: [valueInfo('x', [1, 4, 8, 8])],
      output: [valueInfo('y', [1, n])],
    },
  }).finish();
  const file = path.join(folder, 'model.onnx');
  writeFileSync(file, model);
  return { file, gemmNonzero: gemm.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0) };
}

/** Runs `f` with node:fs's reads watched: the largest single read, and the files read whole. */
async function watchingReads<T>(f: () => Promise<T>): Promise<{ result: T; largestRead: number; readWhole: string[] }> {
  const { readSync } = fs;
  const readFile = fs.promises.readFile;
  let largestRead = 0;
  const readWhole: string[] = [];
  fs.readSync = ((fd: number, buffer: NodeJS.ArrayBufferView, ...rest: unknown[]) => {
    const n = (readSync as (...a: unknown[]) => number)(fd, buffer, ...rest);
    largestRead = Math.max(largestRead, n);
    return n;
  }) as typeof fs.readSync;
  fs.promises.readFile = ((p: fs.PathLike, ...rest: unknown[]) => {
    readWhole.push(String(p));
    return (readFile as (...a: unknown[]) => Promise<Buffer>)(p, ...rest);
  }) as typeof fs.promises.readFile;
  // Named imports of node:fs (`import { readSync } from 'node:fs'`) follow the patched export.
  syncBuiltinESMExports();
  try {
    return { result: await f(), largestRead, readWhole };
  } finally {
    fs.readSync = readSync;
    fs.promises.readFile = readFile;
    syncBuiltinESMExports();
  }
}

for (const external of [false, true]) {
  const kind = external ? 'external data' : 'inline weights';
  test(`prune without a run, ${kind}: no read takes more than one copy block, the input is never read whole, and the output is the whole-file writer's`, async () => {
    const folder = path.join(dir, `watched-${external ? 'ext' : 'inline'}`);
    const { file, gemmNonzero } = writeModel(folder, external);
    // The whole-file writer's output, for comparison (loaded whole: run is not false).
    const whole = await loadModel(file);
    fs.mkdirSync(path.join(folder, 'whole'));
    await exportModel(whole, reshape(whole, 'cross'), path.join(folder, 'whole', 'out.onnx'), 'masked');
    fs.mkdirSync(path.join(folder, 'streamed'));
    const out = path.join(folder, 'streamed', 'out.onnx');
    const { result: report, largestRead, readWhole } = await watchingReads(() => prune(file, { shape: 'cross', layout: 'masked', run: false, gzip: false, output: out }));
    assert.ok(largestRead > 0 && largestRead <= COPY_BLOCK, `largest single read ${largestRead} bytes`);
    assert.deepEqual(readWhole.filter((p) => path.resolve(p).startsWith(folder)), []);
    assert.deepEqual(folderDigests(path.join(folder, 'streamed')), folderDigests(path.join(folder, 'whole')));
    // The Gemm weight was counted as it was copied: its non-zeros are in the report.
    const g = report.after.params;
    assert.equal(g.all, 144 + 4 + 256 * 12288);
    const reread = (await loadModel(out)).inventory().weights;
    assert.equal(g.nonzero, reread.reduce((a, w) => a + w.nonzero, 0));
    assert.ok(g.nonzero - g.conv3x3Nonzero === gemmNonzero + 4);
  });

  test(`prune without a run, ${kind}: an input that changes after it was loaded is a clear error, and nothing is written`, async () => {
    const folder = path.join(dir, `changed-${external ? 'ext' : 'inline'}`);
    const { file } = writeModel(folder, external);
    const model = await loadModel(file, { lazy: true, stream: true });
    const changed = external ? path.join(folder, 'w.bin') : file;
    // Same size, same bytes, a new modification time: the copy cannot tell old bytes from new.
    const later = new Date(Date.now() + 5000);
    utimesSync(changed, later, later);
    fs.mkdirSync(path.join(folder, 'out'));
    await assert.rejects(exportModel(model, reshape(model, 'cross'), path.join(folder, 'out', 'out.onnx'), 'masked'), (e: unknown) => {
      assert.ok(e instanceof KpruneError && e.code === 'io', String(e));
      assert.match(e.message, /the input changed while kprune was reading it/);
      assert.equal(path.resolve(e.file!), path.resolve(changed));
      return true;
    });
    assert.deepEqual(readdirSync(path.join(folder, 'out')), []);
  });
}

test('a file range is copied block by block, read back against its input, and a changed input fails the read-back', async () => {
  const folder = path.join(dir, 'range');
  fs.mkdirSync(folder);
  const input = path.join(folder, 'in.bin');
  const bytes = Buffer.from(randomFloats((COPY_BLOCK * 2 + 1000) / 4, 3).buffer);
  writeFileSync(input, bytes);
  const stamp = fileStamp(fs.statSync(input, { bigint: true }));
  const blocks: number[] = [];
  const range = { kind: 'file-range' as const, file: input, offset: 100, length: bytes.length - 200, stamp, onBlock: (b: Uint8Array) => blocks.push(b.length) };
  const out = path.join(folder, 'out.bin');
  await writeFilesAtomically([{ path: out, data: [Buffer.from('head'), range, Buffer.from('tail')] }], [{ path: input, role: 'the input' }]);
  assert.deepEqual(readFileSync(out), Buffer.concat([Buffer.from('head'), bytes.subarray(100, bytes.length - 100), Buffer.from('tail')]));
  assert.deepEqual(blocks, [COPY_BLOCK, COPY_BLOCK, bytes.length - 200 - 2 * COPY_BLOCK]);
  // A stale stamp (the file changed since): an error naming the input, and no output.
  const out2 = path.join(folder, 'out2.bin');
  await assert.rejects(writeFilesAtomically([{ path: out2, data: [{ ...range, stamp: `${stamp}x` }] }]), /the input changed while kprune was reading it/);
  assert.equal(existsSync(out2), false);
  // Changed after the copy, before the read-back: the check fails on the input, not the disk.
  const tx = new OutputTransaction();
  const out3 = path.join(folder, 'out3.bin');
  tx.declare({ path: out3, role: 'the output' });
  await tx.write(out3, [range]);
  const later = new Date(Date.now() + 5000);
  utimesSync(input, later, later);
  await assert.rejects(tx.checkStaged(out3), /the input changed while kprune was reading it/);
  tx.abort();
  assert.equal(existsSync(out3), false);
});

for (const external of [false, true]) {
  const kind = external ? 'external data' : 'inline weights';
  test(`a default run, ${kind}: onnxruntime reads the weights from the file, the input is never read whole, and the output and figures are the whole-file writer's`, async () => {
    const folder = path.join(dir, `run-${external ? 'ext' : 'inline'}`);
    const { file } = writeModel(folder, external);
    fs.mkdirSync(path.join(folder, 'whole'));
    const whole = await loadModel(file);
    await exportModel(whole, reshape(whole, 'cross'), path.join(folder, 'whole', 'out.onnx'), 'decomposed');
    const before = readdirSync(folder).sort();
    fs.mkdirSync(path.join(folder, 'streamed'));
    const out = path.join(folder, 'streamed', 'out.onnx');
    const { result: report, readWhole } = await watchingReads(() => prune(file, { shape: 'cross', layout: 'decomposed', gzip: false, latencyRuns: 2, output: out }));
    assert.deepEqual(readWhole.filter((p) => path.resolve(p).startsWith(folder)), []);
    assert.deepEqual(folderDigests(path.join(folder, 'streamed')), folderDigests(path.join(folder, 'whole')));
    assert.match(report.output.verified, /ran once in onnxruntime/);
    // MACs need a run of each model for its tensor sizes: both ran, from their files.
    assert.ok(report.before.macs.status === 'measured' && report.after.macs.status === 'measured', JSON.stringify(report.before.macs));
    assert.equal(report.before.macs.dense, 4 * 64 * 36 + 256 * 12288);
    assert.ok(!('status' in report.latency), JSON.stringify(report.latency));
    // The probe graphs written beside the models are gone.
    assert.deepEqual(readdirSync(folder).sort(), [...before, 'streamed'].sort());
    assert.deepEqual(readdirSync(path.join(folder, 'streamed')).sort(), external ? ['out.onnx', 'out.w.bin'] : ['out.onnx']);
  });
}

test('analyze with its run: the sizes come from onnxruntime reading the weights from the file, as from the whole model', async () => {
  const folder = path.join(dir, 'analyze');
  const { file } = writeModel(folder, false);
  const { result: lazy, readWhole } = await watchingReads(() => analyze(file, {}));
  assert.deepEqual(readWhole.filter((p) => path.resolve(p).startsWith(folder)), []);
  assert.ok(lazy.reach.macs, lazy.reach.macsUnknown);
  assert.equal(lazy.reach.macs.model, 4 * 64 * 36 + 256 * 12288);
});

test('a default run of a model file that is a link to another folder: its tensors are read in for onnxruntime, which refuses data reached through such a link', async () => {
  const folder = path.join(dir, 'linked');
  const { file } = writeModel(path.join(folder, 'real'), false);
  fs.mkdirSync(path.join(folder, 'other'));
  const link = path.join(folder, 'other', 'link.onnx');
  fs.symlinkSync(path.relative(path.dirname(link), file), link);
  const report = await prune(link, { shape: 'cross', layout: 'masked', gzip: false, latencyRuns: 1, output: path.join(folder, 'other', 'out.onnx') });
  assert.match(report.output.verified, /ran once in onnxruntime/);
  assert.equal(report.before.macs.status, 'measured');
  assert.deepEqual(readdirSync(path.join(folder, 'other')).sort(), ['link.onnx', 'out.onnx']);
});

test('decomposed pieces of external weights have no data until written: made one layer at a time as the data file is written, the bytes those recorded', async () => {
  const input = path.join(FIXTURES, 'models', 'vgg-fmnist-external', 'model.onnx');
  const model = await readOnnxModel(input);
  const { layers } = findConv3x3(model);
  assert.ok(layers.length >= 2 && layers.every((l) => model.constants.get(l.id)!.storage === 'external'));
  const loaded = await loadOnnx(input);
  const { plan, weights } = reshape(loaded, 'cross');
  const { edits } = layoutEdits(model, layers, weights, layoutRequests(plan, planMasks(plan), 'decomposed'));
  const pieces = edits.addInitializers.filter((t) => edits.madeLater.has(t));
  assert.ok(pieces.length >= layers.length, `${pieces.length} pieces made when written`);
  for (const t of pieces) assert.ok(!t.rawData || t.rawData.length === 0, `${t.name} holds data before the write`);
  const folder = path.join(dir, 'pieces');
  fs.mkdirSync(folder);
  await writeOnnxModel(model, new Map(), path.join(folder, 'out.onnx'), edits);
  assert.deepEqual(folderDigests(folder), golden.cases['vgg-fmnist-external/model.onnx cross decomposed']);
});

test('around the page cache: odd lengths and made chunks come out exact, a staged byte changed after the write fails the read-back', async () => {
  const folder = path.join(dir, 'direct');
  fs.mkdirSync(folder);
  const input = path.join(folder, 'in.bin');
  const bytes = Buffer.from(randomFloats(((DIRECT_BLOCK + 12345) * 2) / 4, 5).buffer);
  writeFileSync(input, bytes);
  const stamp = fileStamp(fs.statSync(input, { bigint: true }));
  const range = { kind: 'file-range' as const, file: input, offset: 3, length: bytes.length - 10, stamp };
  const made = Buffer.from(randomFloats(1001, 6).buffer).subarray(1);
  const want = Buffer.concat([Buffer.from('odd'), bytes.subarray(3, bytes.length - 7), made]);
  // The writer on its own, where the file system allows it (tmpfs on older kernels does not).
  const probe = path.join(folder, 'probe.bin');
  writeFileSync(probe, '');
  const writer = openDirectForWriting(probe);
  if (writer) {
    await writer.push(want.subarray(0, 5));
    await writer.push(want.subarray(5));
    await writer.close();
    assert.deepEqual(readFileSync(probe), want);
    const reader = new SequentialReader(probe, true);
    const back: Buffer[] = [];
    for (let piece = reader.take(1000); piece.length > 0; piece = reader.take(1 << 30)) back.push(Buffer.from(piece));
    reader.close();
    assert.deepEqual(Buffer.concat(back), want);
  }
  // Through a transaction: a model-sized output with a file range goes around the page cache when it can.
  const tx = new OutputTransaction();
  const out = path.join(folder, 'out.bin');
  tx.declare({ path: out, role: 'the output' });
  const staged = await tx.write(out, [Buffer.from('odd'), range, () => made]);
  assert.deepEqual(readFileSync(staged), want);
  await tx.checkStaged(out);
  const fd = fs.openSync(staged, 'r+');
  fs.writeSync(fd, Buffer.from([want[DIRECT_BLOCK + 7] ^ 1]), 0, 1, DIRECT_BLOCK + 7);
  fs.closeSync(fd);
  await assert.rejects(tx.checkStaged(out), /does not read back as it was written/);
  tx.abort();
});

test('a reshaped model\'s read-back reads what kprune made, not what it copied: made and structure bytes compared, copied ranges by the input\'s stamp', async () => {
  const folder = path.join(dir, 'stamp-check');
  fs.mkdirSync(folder);
  const input = path.join(folder, 'in.bin');
  const bytes = Buffer.from(randomFloats((DIRECT_BLOCK * 3 + 4444) / 4, 8).buffer);
  writeFileSync(input, bytes);
  const stamp = fileStamp(fs.statSync(input, { bigint: true }));
  const range = { kind: 'file-range' as const, file: input, offset: 5, length: bytes.length - 9, stamp };
  const made = Buffer.from(randomFloats(3000, 9).buffer);
  const head = Buffer.from('structure');
  const write = async () => {
    const tx = new OutputTransaction();
    const out = path.join(folder, 'out.bin');
    tx.declare({ path: out, role: 'the output' });
    const staged = await tx.write(out, [head, range, () => made, Buffer.from('end')]);
    return { tx, out, staged };
  };
  const flip = (file: string, at: number) => {
    const fd = fs.openSync(file, 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    fs.writeSync(fd, Buffer.from([b[0] ^ 1]), 0, 1, at);
    fs.closeSync(fd);
  };
  // As written: passes, reading the staged file for its made and structure bytes only (every byte
  // read counted: the copied range is three blocks; compared, it is read twice, staged and input).
  const bytesRead = async (f: () => Promise<void>) => {
    const { readSync } = fs;
    let total = 0;
    fs.readSync = ((...a: unknown[]) => {
      const n = (readSync as (...b: unknown[]) => number)(...a);
      total += n;
      return n;
    }) as typeof fs.readSync;
    syncBuiltinESMExports();
    try {
      await f();
    } finally {
      fs.readSync = readSync;
      syncBuiltinESMExports();
    }
    return total;
  };
  {
    const { tx, out } = await write();
    const stamped = await bytesRead(() => tx.checkStaged(out, 'stamp'));
    const compared = await bytesRead(() => tx.checkStaged(out));
    assert.ok(stamped < range.length / 2, `stamp: ${stamped} bytes read for a ${range.length}-byte copied range`);
    assert.ok(compared >= 2 * range.length, `compare: ${compared} bytes read`);
    tx.abort();
  }
  // A changed byte in what kprune made, or in the structure, fails; so does a cut file.
  for (const at of [(s: number) => 2, (s: number) => s - made.length - 3 + 100, (s: number) => s - 1]) {
    const { tx, out, staged } = await write();
    flip(staged, at(fs.statSync(staged).size));
    await assert.rejects(tx.checkStaged(out, 'stamp'), /does not read back as it was written/);
    tx.abort();
  }
  {
    const { tx, out, staged } = await write();
    fs.truncateSync(staged, fs.statSync(staged).size - 1);
    await assert.rejects(tx.checkStaged(out, 'stamp'), /does not read back as it was written/);
    tx.abort();
  }
  // The input changed since the copy: an error naming it, as when the copy is compared.
  {
    const { tx, out } = await write();
    const later = new Date(Date.now() + 7000);
    utimesSync(input, later, later);
    await assert.rejects(tx.checkStaged(out, 'stamp'), /the input changed while kprune was reading it/);
    tx.abort();
  }
  // The default compares the copied bytes too: a byte changed there fails it.
  {
    const stamp2 = fileStamp(fs.statSync(input, { bigint: true }));
    const tx = new OutputTransaction();
    const out = path.join(folder, 'out2.bin');
    tx.declare({ path: out, role: 'the output' });
    const staged = await tx.write(out, [head, { ...range, stamp: stamp2 }, () => made]);
    flip(staged, head.length + DIRECT_BLOCK + 17);
    await assert.rejects(tx.checkStaged(out), /does not read back as it was written/);
    await tx.checkStaged(out, 'stamp');
    tx.abort();
  }
});
