/**
 * Fuzzing TF.js inputs, bounded: damaged model.json (keys dropped, numbers made absurd, dtypes and
 * paths changed, text cut) and damaged shards (cut, extended, bits flipped) end in a clear
 * KpruneError with nothing written, or in a verified output. Never a crash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync, cpSync, rmSync } from 'node:fs';
import path from 'node:path';
import { prune, isKpruneError } from '../src/index.js';
import { mulberry32 } from '../src/util/random.js';
import { graphModelFiles, writeModelFiles, encodeWeights } from './helpers/tfjs-models.js';
import { tempDir } from './helpers/tmp.js';

const dir = tempDir();

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path to a value in a JSON document. */
function paths(v: Json, at: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

function mutateJson(doc: Json, rand: () => number): Json {
  const copy = JSON.parse(JSON.stringify(doc)) as Json;
  const all = paths(copy).filter((p) => p.length > 0);
  const target = all[Math.floor(rand() * all.length)];
  const parent = target.slice(0, -1).reduce<Json>((o, k) => (o as Record<string, Json>)[k as string], copy) as Record<string | number, Json>;
  const key = target[target.length - 1];
  const replacements: Json[] = [null, -1, 1e12, 0, 'float64', '../../outside.bin', '/etc/passwd', [], {}, 'x'.repeat(3), [1e9, 1e9, 1e9, 1e9]];
  if (rand() < 0.3 && !Array.isArray(parent)) delete parent[key];
  else parent[key] = replacements[Math.floor(rand() * replacements.length)];
  return copy;
}

test('200 damaged TF.js models: a clear error and nothing written, or a verified output', async () => {
  const base = path.join(dir, 'base');
  graphModelFiles(path.join(base, 'graph'), { shardBytes: 256 });
  const layers = encodeWeights([
    { name: 'conv/kernel', shape: [3, 3, 1, 4], values: Float32Array.from({ length: 36 }, (_, i) => Math.sin(i)) },
    { name: 'conv/bias', shape: [4], values: new Float32Array(4) },
  ], 'uint8');
  writeModelFiles(path.join(base, 'layers'), {
    class_name: 'Sequential',
    config: { name: 'seq', layers: [{ class_name: 'Conv2D', config: { name: 'conv', filters: 4, kernel_size: [3, 3], strides: [1, 1], padding: 'same', data_format: 'channels_last', dilation_rate: [1, 1], activation: 'linear', use_bias: true, batch_input_shape: [null, 6, 6, 1], dtype: 'float32' } }] },
    keras_version: 'tfjs-layers 4.22.0', backend: 'tensor_flow.js',
  }, 'layers-model', layers, { shardBytes: 16 });
  const rand = mulberry32(Number(process.env.KPRUNE_FUZZ_SEED ?? 4242));
  let errors = 0;
  let written = 0;
  const failures: string[] = [];
  for (let i = 0; i < 200; i++) {
    const kind = i % 2 === 0 ? 'graph' : 'layers';
    const caseDir = path.join(dir, `case${i}`);
    cpSync(path.join(base, kind), caseDir, { recursive: true });
    const modelJson = path.join(caseDir, 'model.json');
    const what = rand();
    if (what < 0.5) {
      writeFileSync(modelJson, JSON.stringify(mutateJson(JSON.parse(readFileSync(modelJson, 'utf8')), rand)));
    } else if (what < 0.6) {
      const text = readFileSync(modelJson, 'utf8');
      writeFileSync(modelJson, text.slice(0, Math.floor(rand() * text.length)));
    } else {
      const shards = readdirSync(caseDir).filter((f) => f.endsWith('.bin'));
      const shard = path.join(caseDir, shards[Math.floor(rand() * shards.length)]);
      const bytes = readFileSync(shard);
      const r = rand();
      if (r < 0.4) writeFileSync(shard, bytes.subarray(0, Math.floor(rand() * bytes.length)));
      else if (r < 0.6) writeFileSync(shard, Buffer.concat([bytes, Buffer.alloc(1 + Math.floor(rand() * 64), 7)]));
      else {
        for (let k = 0; k < 4; k++) bytes[Math.floor(rand() * bytes.length)] ^= 1 << Math.floor(rand() * 8);
        writeFileSync(shard, bytes);
      }
    }
    const outDir = path.join(dir, `out${i}`);
    try {
      await prune(modelJson, { layout: 'masked', shape: 'cross', output: path.join(outDir, 'model.json'), latencyRuns: 0 });
      written++;
    } catch (e) {
      if (!isKpruneError(e)) failures.push(`case ${i} (${kind}): crash: ${e instanceof Error ? e.stack?.split('\n').slice(0, 2).join(' ') : String(e)}`);
      else {
        errors++;
        if (existsSync(outDir) && readdirSync(outDir).length > 0) failures.push(`case ${i}: files left after "${e.oneLine()}": ${readdirSync(outDir).join(', ')}`);
      }
    }
    rmSync(caseDir, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
  assert.deepEqual(failures, []);
  assert.ok(errors > 30, `${errors} errors, ${written} written`);
});
