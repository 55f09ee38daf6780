/**
 * Mutations of model files for fuzzing: bit flips, cuts, byte runs, and protobuf-aware damage
 * (huge declared lengths, changed varints), all from a seed so a failing case can be replayed.
 */
import { readdirSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { prune, isKpruneError } from '../../src/index.js';
import { scanFields } from '../../src/formats/onnx/wire.js';
import { seededRandom } from './onnx-builder.js';

export type Mutation = 'bitflip' | 'truncate' | 'overwrite' | 'length' | 'varint' | 'duplicate' | 'delete';
const MUTATIONS: Mutation[] = ['bitflip', 'truncate', 'overwrite', 'length', 'varint', 'duplicate', 'delete'];

/** Offsets of protobuf fields down to a few levels: where length and varint damage hurts most. */
function fieldOffsets(buf: Uint8Array): { start: number; dataStart: number; wire: number }[] {
  const out: { start: number; dataStart: number; wire: number }[] = [];
  const walk = (start: number, end: number, depth: number) => {
    let fields;
    try {
      fields = scanFields(buf, start, end);
    } catch {
      return;
    }
    for (const f of fields) {
      out.push({ start: f.start, dataStart: f.dataStart, wire: f.wire });
      if (f.wire === 2 && depth < 4 && f.dataEnd - f.dataStart > 2) walk(f.dataStart, f.dataEnd, depth + 1);
    }
  };
  walk(0, buf.length, 0);
  return out;
}

export function mutate(original: Uint8Array, seed: number): { bytes: Uint8Array; mutation: Mutation } {
  const rand = seededRandom(seed);
  const pick = (n: number) => Math.floor(rand() * n);
  const mutation = MUTATIONS[pick(MUTATIONS.length)];
  const b = Buffer.from(original);
  const fields = fieldOffsets(b);
  switch (mutation) {
    case 'bitflip': {
      const flips = 1 + pick(8);
      for (let i = 0; i < flips; i++) b[pick(b.length)] ^= 1 << pick(8);
      return { bytes: b, mutation };
    }
    case 'truncate':
      return { bytes: b.subarray(0, pick(b.length)), mutation };
    case 'overwrite': {
      const at = pick(b.length);
      const len = 1 + pick(64);
      for (let i = at; i < Math.min(b.length, at + len); i++) b[i] = pick(256);
      return { bytes: b, mutation };
    }
    case 'length': {
      // A length prefix claiming far more (or less) than there is.
      const lens = fields.filter((f) => f.wire === 2);
      if (lens.length === 0) return { bytes: b, mutation };
      const f = lens[pick(lens.length)];
      const huge = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]);
      return { bytes: Buffer.concat([b.subarray(0, f.start + 1), rand() < 0.5 ? huge : Buffer.from([pick(128)]), b.subarray(f.dataStart)]), mutation };
    }
    case 'varint': {
      // A dims value, data type, group... replaced by something absurd (negative, huge, zero).
      const vs = fields.filter((f) => f.wire === 0);
      if (vs.length === 0) return { bytes: b, mutation };
      const f = vs[pick(vs.length)];
      let end = f.dataStart;
      while (end < b.length && b[end] & 0x80) end++;
      const values = [Buffer.from([0]), Buffer.from([0x7f]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x08])];
      return { bytes: Buffer.concat([b.subarray(0, f.dataStart), values[pick(values.length)], b.subarray(end + 1)]), mutation };
    }
    case 'duplicate': {
      // A field repeated: duplicate names, duplicate nodes.
      if (fields.length === 0) return { bytes: b, mutation };
      const f = fields[pick(fields.length)];
      const next = fields.find((g) => g.start > f.start)?.start ?? b.length;
      return { bytes: Buffer.concat([b.subarray(0, next), b.subarray(f.start, next), b.subarray(next)]), mutation };
    }
    case 'delete': {
      const at = pick(b.length);
      return { bytes: Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + pick(32)))]), mutation };
    }
  }
}

export interface FuzzOutcome {
  cases: number;
  errors: number;
  written: number;
  failures: { seed: number; model: string; mutation: Mutation; problem: string }[];
}

/** Runs `cases` mutated copies of the fixtures through prune; anything but a KpruneError or a valid output is a failure. */
export async function fuzzModels(fixtures: string, cases: number, seed: number): Promise<FuzzOutcome> {
  const models = readdirSync(path.join(fixtures, 'models')).filter((f) => f.endsWith('.onnx'));
  const { readFileSync } = await import('node:fs');
  const sources = models.map((m) => ({ name: m, bytes: readFileSync(path.join(fixtures, 'models', m)) }));
  const dir = await mkdtemp(path.join(tmpdir(), 'kprune-fuzz-'));
  const outcome: FuzzOutcome = { cases: 0, errors: 0, written: 0, failures: [] };
  try {
    // kprune's own outputs are inputs too: a sparse layout (Constant sparse_value nodes) and a
    // decomposed one (Sum, Slice, dilated pieces), damaged like the rest.
    for (const [model, layout] of [['vgg-fmnist.onnx', 'sparse'], ['resnet-fmnist.onnx', 'decomposed']] as const) {
      const out = path.join(dir, `base-${layout}.onnx`);
      await prune(path.join(fixtures, 'models', model), { shape: 'qh', output: out, latencyRuns: 0, layout });
      sources.push({ name: `${model} (${layout})`, bytes: readFileSync(out) });
      await rm(out, { force: true });
    }
    // An external-data model: its damaged headers point into a real data file beside the cases
    // (offsets, lengths and locations are read lazily, one tensor at a time).
    const external = path.join(fixtures, 'models', 'vgg-fmnist-external');
    await writeFile(path.join(dir, 'weights.bin'), readFileSync(path.join(external, 'weights.bin')));
    sources.push({ name: 'vgg-fmnist-external/model.onnx', bytes: readFileSync(path.join(external, 'model.onnx')) });
    for (let i = 0; i < cases; i++) {
      const s = seed + i;
      const src = sources[i % sources.length];
      const { bytes, mutation } = mutate(src.bytes, s);
      const input = path.join(dir, `case-${s}.onnx`);
      const output = path.join(dir, `case-${s}.out.onnx`);
      await writeFile(input, bytes);
      outcome.cases++;
      try {
        await prune(input, { shape: 'cross', output, latencyRuns: 0 });
        outcome.written++;
      } catch (e) {
        if (!isKpruneError(e)) {
          outcome.failures.push({ seed: s, model: src.name, mutation, problem: `crash: ${e instanceof Error ? e.message : String(e)}` });
        } else {
          outcome.errors++;
          const left = (await readdir(dir)).filter((f) => f.startsWith(`case-${s}.out`) || f.includes(`case-${s}.out.onnx.`));
          if (left.length > 0) outcome.failures.push({ seed: s, model: src.name, mutation, problem: `output left after error "${e.oneLine()}": ${left.join(', ')}` });
          if (e.oneLine().includes('\n')) outcome.failures.push({ seed: s, model: src.name, mutation, problem: 'multi-line error' });
        }
      }
      await rm(input, { force: true });
      for (const f of (await readdir(dir)).filter((f) => f.startsWith(`case-${s}.out`))) await rm(path.join(dir, f), { force: true });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return outcome;
}
