/**
 * Fuzz families the byte-level mutations of fuzz.ts rarely reach, each from a seed:
 *  - oversized declared dims: model inputs, --input-shape, initializer and sparse dims, TF.js
 *    input and weight shapes, .npy / IDX / PNG headers declaring up to terabytes;
 *  - non-finite values: NaN and infinities in ONNX weights (3x3 or not), TF.js shards and
 *    quantization ranges (1e999 parses to Infinity), and in data samples;
 *  - deep nesting: config files, plans and model.json with arrays or objects nested from 900 to
 *    100,000 levels at random places.
 * Every case must end in a KpruneError (one line, nothing written) or a verified output; anything
 * else (a crash, a RangeError, an output left after an error) is a failure.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isKpruneError, planFromDocument, prune } from '../../src/index.js';
import { loadData } from '../../src/data/index.js';
import { applyConfig } from '../../cli/config.js';
import { pruneCommand } from '../../cli/commands/prune.js';
import { readJsonFile } from '../../cli/output.js';
import { mulberry32 } from '../../src/util/random.js';
import { floatTensor, valueInfo } from './onnx-builder.js';
import { npyBytes } from './data-files.js';
import { editModel, idxDeclaring, npyDeclaring, npz, pngDeclaring, tfjsQuantized, tiny } from './hostile.js';

export type Family = 'oversized-dims' | 'non-finite' | 'deep-nesting';
export const FAMILIES: Family[] = ['oversized-dims', 'non-finite', 'deep-nesting'];

export interface FamilyOutcome {
  cases: number;
  errors: number;
  written: number;
  failures: { family: Family; seed: number; what: string; problem: string }[];
}

const HUGE = [65_536, 100_000, 2 ** 31 - 1, 2 ** 40, 2 ** 53 - 1];
const BAD_FLOATS = [NaN, Infinity, -Infinity, 3.5e38 * 10];
const DEPTHS = [900, 1000, 1001, 5_000, 100_000];

type Rand = () => number;
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];

/** One case: what it is, and the call that must end in a KpruneError or a written output. */
interface Case {
  what: string;
  run: (dir: string, out: string) => Promise<unknown>;
}

/** JSON text of `doc` with a deep value at a random key (stringified without recursion). */
function withDeep(rand: Rand, doc: Record<string, unknown>, keys: string[]): string {
  const key = pick(rand, keys);
  const depth = pick(rand, DEPTHS);
  const text = rand() < 0.5 ? '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) : '['.repeat(depth) + ']'.repeat(depth);
  const rest = JSON.stringify({ ...doc, [key]: '__DEEP__' });
  return rest.replace('"__DEEP__"', text);
}

function oversized(rand: Rand): Case {
  const h = pick(rand, HUGE);
  const w = pick(rand, HUGE);
  const kind = Math.floor(rand() * 8);
  const opts = { latencyRuns: 0, gzip: false };
  switch (kind) {
    case 0: return { what: `model input [N,4,${h},${w}]`, run: async (dir, out) => prune(put(dir, 'm.onnx', editModel(tiny(), (m) => { m.graph!.input = [valueInfo('input', ['N', 4, h, w])]; })), { ...opts, output: out }) };
    case 1: return { what: `--input-shape 1,4,${h},${w}`, run: async (dir, out) => prune(put(dir, 'm.onnx', tiny()), { ...opts, output: out, inputShape: `1,4,${h},${w}` }) };
    case 2: return { what: `initializer w1 dims [${h},4,3,3]`, run: async (dir, out) => prune(put(dir, 'm.onnx', editModel(tiny(), (m) => { m.graph!.initializer!.find((t) => t.name === 'w1')!.dims = [h, 4, 3, 3]; })), { ...opts, output: out }) };
    case 3: return {
      what: `sparse initializer dims [${h},${w},3,3]`,
      run: async (dir, out) => prune(put(dir, 'm.onnx', editModel(tiny(), (m) => {
        m.graph!.sparseInitializer = [{ values: floatTensor('s', [1], Float32Array.of(1)), indices: { name: 'i', dims: [1], dataType: 7, int64Data: [Math.floor(rand() * 4)] }, dims: [h, w, 3, 3] }];
      })), { ...opts, output: out }),
    };
    case 4: return {
      what: `TF.js batch_input_shape [null,${h},${w},1]`,
      run: async (dir, out) => {
        const json = tfjsQuantized(path.join(dir, 'tf'));
        const { readFileSync } = await import('node:fs');
        writeFileSync(json, readFileSync(json, 'utf8').replace('"batch_input_shape":[null,6,6,1]', `"batch_input_shape":[null,${h},${w},1]`));
        return prune(json, { ...opts, output: path.join(path.dirname(out), 'tf-out', 'model.json') });
      },
    };
    case 5: return { what: `.npy declaring (${h}, ${w})`, run: async (dir) => loadData(put(dir, 'd.npy', npyDeclaring([h, w])), { inputDims: ['N', 1, 4, 4], calib: 1, eval: 1, seed: 0 }) };
    case 6: {
      const n = Math.min(h, 2 ** 32 - 1); // an IDX dim is a uint32
      return { what: `.npz x or IDX declaring (${n}, 4, 4)`, run: async (dir) => loadData(rand() < 0.5 ? put(dir, 'd.npz', npz({ x: npyDeclaring([n, 4, 4]) })) : put(dir, 'd-images-idx3-ubyte.gz', idxDeclaring([n, 4, 4])), { inputDims: ['N', 1, 4, 4], calib: 1, eval: 1, seed: 0 }) };
    }
    default: return {
      what: `PNG declaring ${Math.min(h, 2 ** 31 - 1)} x ${Math.min(w, 2 ** 31 - 1)}`,
      run: async (dir) => {
        put(dir, 'imgs/a.png', pngDeclaring(Math.min(h, 2 ** 31 - 1), Math.min(w, 2 ** 31 - 1), 0));
        return loadData(path.join(dir, 'imgs'), { inputDims: ['N', 1, 4, 4], calib: 1, eval: 1, seed: 0 });
      },
    };
  }
}

function nonFinite(rand: Rand): Case {
  const v = pick(rand, BAD_FLOATS);
  const kind = Math.floor(rand() * 5);
  const opts = { latencyRuns: 0, gzip: false };
  switch (kind) {
    case 4: return {
      what: `TF.js float32 kernel value ${v}`,
      run: async (dir, out) => {
        const kernel = Float32Array.from({ length: 36 }, (_, i) => Math.sin(i));
        kernel[Math.floor(rand() * 36)] = v;
        return prune(tfjsQuantized(path.join(dir, 'tf'), null, kernel), { ...opts, output: path.join(path.dirname(out), 'tf-out', 'model.json') });
      },
    };
    case 0: case 1: {
      const tensor = pick(rand, ['w1', 'b1', 'w2']);
      const withData = kind === 1;
      return {
        what: `${tensor}[k] = ${v}${withData ? ' with data' : ''}`,
        run: async (dir, out) => {
          const m = put(dir, 'm.onnx', editModel(tiny({ channels: 1 }), (model) => {
            const t = model.graph!.initializer!.find((x) => x.name === tensor)!;
            const f = new Float32Array(new Uint8Array(t.rawData!).buffer);
            f[Math.floor(rand() * f.length)] = v;
            t.rawData = new Uint8Array(f.buffer);
          }));
          const data = withData ? { data: put(dir, 'd.npy', npyBytes('<f4', [4, 1, 8, 8], Array.from({ length: 256 }, (_, i) => Math.sin(i)))), calib: 2, eval: 2 } : undefined;
          return prune(m, { ...opts, output: out, data });
        },
      };
    }
    case 2: return {
      what: `data sample value ${v}`,
      run: async (dir, out) => {
        const values = Array.from({ length: 256 }, (_, i) => Math.cos(i));
        values[Math.floor(rand() * values.length)] = v;
        return prune(put(dir, 'm.onnx', tiny({ channels: 1 })), { ...opts, output: out, data: { data: put(dir, 'd.npy', npyBytes('<f4', [4, 1, 8, 8], values)), calib: 2, eval: 2 } });
      },
    };
    default: {
      const min = pick(rand, ['1e999', '-1e999', '0', '-3e38', '1e38']);
      const scale = pick(rand, ['1e999', '1e37', '2e36', '1e-3', '0']);
      return {
        what: `TF.js quantization min ${min} scale ${scale}`,
        run: async (dir, out) => {
          const json = tfjsQuantized(path.join(dir, 'tf'), { min: 12345.5, scale: 54321.5 });
          const { readFileSync } = await import('node:fs');
          writeFileSync(json, readFileSync(json, 'utf8').replace('12345.5', min).replace('54321.5', scale));
          return prune(json, { ...opts, output: path.join(path.dirname(out), 'tf-out', 'model.json') });
        },
      };
    }
  }
}

function deepNesting(rand: Rand): Case {
  const kind = Math.floor(rand() * 3);
  switch (kind) {
    case 0: return {
      what: 'config with a deep value',
      run: async (dir) => {
        const file = put(dir, 'c.json', withDeep(rand, { shape: 'cross' }, ['shape', 'calib', 'size', 'layerShape', 'mean', 'run']));
        return applyConfig(pruneCommand(), file);
      },
    };
    case 1: return {
      what: 'plan with a deep value',
      run: async (dir, out) => {
        const entry = { layer: 'w1', name: 'conv1', shape: 'cross', mask: '010/111/010', positions: 5, params: 144, keptParams: 80, chosenBy: 'fixed' };
        const entries = [entry, { ...entry, layer: 'w2', name: 'conv2' }];
        const depth = pick(rand, DEPTHS);
        const doc = rand() < 0.5
          ? withDeep(rand, { planVersion: 1, spec: 'cross', entries, keptFraction: 0.55 }, ['entries', 'spec', 'budget', 'extra'])
          : JSON.stringify({ planVersion: 1, spec: 'cross', entries: [{ ...entry, junk: '__DEEP__' }, entries[1]], keptFraction: 0.55 }).replace('"__DEEP__"', '['.repeat(depth) + ']'.repeat(depth));
        const file = put(dir, 'p.json', doc);
        const plan = planFromDocument(await readJsonFile(file), file);
        return prune(put(dir, 'm.onnx', tiny()), { plan, output: out, latencyRuns: 0, gzip: false });
      },
    };
    default: return {
      what: 'model.json with a deep value',
      run: async (dir, out) => {
        const json = tfjsQuantized(path.join(dir, 'tf'));
        const { readFileSync } = await import('node:fs');
        const doc = JSON.parse(readFileSync(json, 'utf8')) as Record<string, unknown>;
        const where = pick(rand, ['modelTopology', 'extra', 'layerConfig']);
        let text: string;
        if (where === 'layerConfig') {
          const topo = doc.modelTopology as { config: { layers: { config: Record<string, unknown> }[] } };
          topo.config.layers[0].config.kernel_constraint = '__DEEP__';
          const depth = pick(rand, DEPTHS);
          text = JSON.stringify(doc).replace('"__DEEP__"', '['.repeat(depth) + ']'.repeat(depth));
        } else {
          text = withDeep(rand, doc, [where]);
        }
        writeFileSync(json, text);
        return prune(json, { output: path.join(path.dirname(out), 'tf-out', 'model.json'), latencyRuns: 0, gzip: false });
      },
    };
  }
}

function put(dir: string, name: string, bytes: Uint8Array | string): string {
  const file = path.join(dir, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, bytes);
  return file;
}

const MAKERS: Record<Family, (rand: Rand) => Case> = { 'oversized-dims': oversized, 'non-finite': nonFinite, 'deep-nesting': deepNesting };

/** Runs `cases` seeded cases of each family. */
export async function fuzzFamilies(cases: number, seed: number, families: Family[] = FAMILIES, log?: (family: Family, what: string, result: string) => void): Promise<FamilyOutcome> {
  const outcome: FamilyOutcome = { cases: 0, errors: 0, written: 0, failures: [] };
  const root = await mkdtemp(path.join(tmpdir(), 'kprune-fuzz-families-'));
  try {
    for (const family of families) {
      for (let i = 0; i < cases; i++) {
        const s = seed + i;
        const rand = mulberry32(s * 7919 + family.length);
        const c = MAKERS[family](rand);
        const dir = path.join(root, `${family}-${s}`);
        mkdirSync(dir, { recursive: true });
        const out = path.join(dir, 'out', 'written.onnx');
        mkdirSync(path.dirname(out), { recursive: true });
        outcome.cases++;
        const fail = (problem: string) => outcome.failures.push({ family, seed: s, what: c.what, problem });
        try {
          await c.run(dir, out);
          outcome.written++;
          log?.(family, c.what, 'ok');
        } catch (e) {
          log?.(family, c.what, isKpruneError(e) ? `${e.code}: ${e.oneLine()}` : `CRASH ${String(e)}`);
          if (!isKpruneError(e)) {
            fail(`crash: ${e instanceof Error ? `${e.name}: ${e.message.slice(0, 200)}` : String(e)}`);
          } else {
            outcome.errors++;
            if (e.oneLine().includes('\n')) fail(`multi-line error: ${e.oneLine()}`);
            const left = existsSync(path.dirname(out)) ? readdirSync(path.dirname(out)) : [];
            if (left.length > 0) fail(`output left after "${e.oneLine()}": ${left.join(', ')}`);
          }
        }
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return outcome;
}
