/**
 * Building blocks for the output-safety tests and the path fuzz family: copies of the
 * external-data fixture whose tensors name their data file in chosen spellings, a fingerprint of
 * a folder (to prove inputs unchanged and nothing left behind), and the reference every correct
 * output must equal: the fixture's weights with the plan's masks applied, checked independently.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { onnx } from '../../src/formats/onnx/proto.js';
import { readOnnxModel, tensorFloats } from '../../src/formats/onnx/read.js';
import { maskHas, parseMask, prune } from '../../src/index.js';

export const EXTERNAL_DIR = path.resolve(new URL('../../../fixtures/models/vgg-fmnist-external', import.meta.url).pathname);

/** How an extra file beside the model is made: a copy of weights.bin, or a link to another file. */
export type Extra = { copy: true } | { symlink: string } | { hardlink: string };

/**
 * A copy of the external-data fixture in `dir`: tensor k (in file order) names its data file
 * `locations[k % locations.length]`. weights.bin is always there; `extras` makes the other
 * spellings' files (a name with a backslash is one file name on POSIX).
 */
export function externalVariant(dir: string, locations: string[], extras: Record<string, Extra> = {}): string {
  mkdirSync(dir, { recursive: true });
  const proto = onnx.ModelProto.decode(readFileSync(path.join(EXTERNAL_DIR, 'model.onnx')));
  let k = 0;
  for (const t of proto.graph!.initializer ?? []) {
    for (const e of t.externalData ?? []) if (e.key === 'location') e.value = locations[k++ % locations.length];
  }
  const model = path.join(dir, 'model.onnx');
  writeFileSync(model, onnx.ModelProto.encode(proto).finish());
  copyFileSync(path.join(EXTERNAL_DIR, 'weights.bin'), path.join(dir, 'weights.bin'));
  for (const [name, how] of Object.entries(extras)) {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    if ('copy' in how) copyFileSync(path.join(EXTERNAL_DIR, 'weights.bin'), file);
    else if ('symlink' in how) symlinkSync(how.symlink, file);
    else linkSync(path.join(dir, how.hardlink), file);
  }
  return model;
}

/** Every entry below `dir` (hidden ones too) with a hash of its bytes, or its link target. */
export function fingerprint(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const file = path.join(d, name);
      const rel = path.relative(dir, file);
      const st = lstatSync(file);
      if (st.isSymbolicLink()) out.set(rel, `-> ${readlinkSync(file)}`);
      else if (st.isDirectory()) {
        out.set(rel, 'folder');
        walk(file);
      } else out.set(rel, createHash('sha256').update(readFileSync(file)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

/** The entries added to a folder since `before` (hidden staging folders and temporaries count). */
export function added(dir: string, before: Map<string, string>): string[] {
  return [...fingerprint(dir).keys()].filter((k) => !before.has(k));
}

/** Every entry of `before` is still there with the same bytes. */
export function assertUnchanged(dir: string, before: Map<string, string>, what: string): void {
  const now = fingerprint(dir);
  for (const [k, v] of before) assert.equal(now.get(k), v, `${what}: ${k} changed`);
}

let reference: Promise<Map<string, Float32Array>> | undefined;

/**
 * The constants every correct cross output of the fixture holds: written once by kprune from the
 * fixture as shipped, and checked here against the fixture's own weights with each plan mask
 * applied (kept positions equal, the others zero; every other tensor unchanged).
 */
export function referenceConstants(dir: string): Promise<Map<string, Float32Array>> {
  reference ??= (async () => {
    const out = path.join(dir, 'reference.onnx');
    const report = await prune(path.join(EXTERNAL_DIR, 'model.onnx'), { shape: 'cross', layout: 'masked', output: out, latencyRuns: 0 });
    const original = await readOnnxModel(path.join(EXTERNAL_DIR, 'model.onnx'));
    const written = await readOnnxModel(out);
    const masks = new Map(report.plan.entries.map((e) => [e.layer, parseMask(e.mask)]));
    const constants = new Map<string, Float32Array>();
    for (const [name, ref] of original.constants) {
      const before = tensorFloats(original, ref);
      const after = tensorFloats(written, written.constants.get(name)!);
      const mask = masks.get(name);
      const expected = mask !== undefined ? before.map((v, i) => (maskHas(mask, i % 9) ? v : 0)) : before;
      assert.deepEqual(after, expected, `reference ${name}`);
      constants.set(name, after);
    }
    assert.ok(masks.size >= 5);
    return constants;
  })();
  return reference;
}

/** The written model holds exactly the reference's constants, and runs as the reference does. */
export async function assertCorrectOutput(file: string, dir: string): Promise<void> {
  const ref = await referenceConstants(dir);
  const written = await readOnnxModel(file);
  assert.equal(written.constants.size, ref.size);
  for (const [name, values] of ref) assert.deepEqual(tensorFloats(written, written.constants.get(name)!), values, `${file}: ${name}`);
  const x = Float32Array.from({ length: 28 * 28 }, (_, i) => ((i * 7919) % 256) / 255);
  const runs: Float32Array[] = [];
  for (const f of [file, path.join(dir, 'reference.onnx')]) {
    const s = await ort.InferenceSession.create(f);
    const y = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [1, 1, 28, 28]) });
    runs.push(y[s.outputNames[0]].data as Float32Array);
    await s.release();
  }
  assert.deepEqual(runs[0], runs[1]);
}
