/**
 * The package as a consumer gets it: `npm pack` holds only what runs (no tests, benchmarks, model
 * fixtures or CI), a LICENSE, the schemas importable by name, and `prune` works through the public
 * API from an empty project, TF.js models included (TF.js from the sub-packages it depends on, not
 * the @tensorflow/tfjs umbrella).
 *
 * The consumer's dependencies are this repository's installed ones, linked: `npm install --offline`
 * of the tarball needs every dependency in the npm cache, which a machine that installed from a
 * lockfile mirror may not have (this one does not); .ci/pack-install runs the real install online.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES, tempDir } from './helpers/tmp.js';
import { graphModelFiles } from './helpers/tfjs-models.js';
import { readTree } from './helpers/imports.js';

const ROOT = path.resolve(FIXTURES, '..');
const dir = tempDir('kprune-pack-');

test('npm pack: only what runs, a LICENSE, and prune through the public API in an empty project', () => {
  const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  const files: string[] = packed[0].files.map((f: { path: string }) => f.path);
  for (const must of ['LICENSE', 'README.md', 'package.json', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/cli/main.js', 'dist/cli/kprune.js', 'dist/cli/chunks/tf.js', 'schema/prune-report.schema.json', 'fixtures/data/fashion-mnist/t10k-images-idx3-ubyte.gz']) {
    assert.ok(files.includes(must), `${must} is in the package`);
  }
  for (const f of files) {
    assert.doesNotMatch(f, /^(test|bench|fuzz|\.ci|src|cli|dist\/test|dist\/bench|dist\/fuzz|fixtures\/models|fixtures\/generate)\//, `${f} does not run: not in the package`);
  }
  assert.match(readFileSync(path.join(ROOT, 'LICENSE'), 'utf8'), /^MIT License[\s\S]*kprune contributors/);

  // An empty project with the tarball unpacked where npm would put it.
  const project = path.join(dir, 'consumer');
  const modules = path.join(project, 'node_modules');
  mkdirSync(path.join(modules, 'kprune'), { recursive: true });
  execFileSync('tar', ['xzf', path.join(dir, packed[0].filename), '-C', path.join(modules, 'kprune'), '--strip-components=1']);
  const pkg = JSON.parse(readFileSync(path.join(modules, 'kprune', 'package.json'), 'utf8'));
  for (const dep of Object.keys(pkg.dependencies)) {
    mkdirSync(path.dirname(path.join(modules, dep)), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules', dep), path.join(modules, dep), 'dir');
  }
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  copyFileSync(path.join(FIXTURES, 'models', 'vgg-fmnist.onnx'), path.join(project, 'model.onnx'));
  graphModelFiles(path.join(project, 'graph'));
  writeFileSync(path.join(project, 'main.js'), [
    "import { prune, VERSION, isKpruneError } from 'kprune';",
    "import schema from 'kprune/schema/prune-report.schema.json' with { type: 'json' };",
    "const report = await prune('model.onnx', { shape: 'cross', latencyRuns: 0 });",
    // A TF.js GraphModel, timed: TF.js loads from the sub-packages the package depends on.
    "const graph = await prune('graph/model.json', { shape: 'cross', latencyRuns: 2 });",
    "let error = null;",
    "let message = null;",
    "try { await prune('missing.onnx'); } catch (e) { error = isKpruneError(e) ? e.oneLine() : String(e); message = e.message; }",
    "console.log(JSON.stringify({ version: VERSION, schema: schema.$ref ?? schema.title ?? Object.keys(schema)[0], out: report.output.path, layout: report.layers[0].layout, ratio: report.after.size.bytes / report.before.size.bytes, graph: { layout: graph.layers[0].layout, runtime: graph.latency.runtime ?? null }, error, message }));",
  ].join('\n'));
  const r = spawnSync(process.execPath, ['main.js'], { cwd: project, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.version, pkg.version);
  assert.ok(out.schema, 'the schema imports by its package path');
  assert.equal(out.out, 'model.kpruned.onnx');
  assert.equal(out.layout, 'decomposed', 'the default layout');
  assert.ok(out.ratio < 0.9, `the default output is smaller: ${out.ratio}`);
  assert.equal(out.graph.layout, 'decomposed');
  assert.match(out.graph.runtime, /^TF\.js 4\.\d+\.\d+ \((wasm|tensorflow) backend\)$/, 'TF.js runs from the declared sub-packages');
  assert.match(out.error, /missing\.onnx/);
  assert.match(out.message, /missing\.onnx/, 'the message a library user prints names the file');
  // The bin (the bundled command line) runs from the package too, and finds package.json there.
  const bin = spawnSync(process.execPath, [path.join(modules, 'kprune', pkg.bin.kprune), '--version'], { cwd: project, encoding: 'utf8' });
  assert.equal(bin.stdout.trim(), pkg.version);
  const analysis = spawnSync(process.execPath, [path.join(modules, 'kprune', pkg.bin.kprune), 'analyze', 'model.onnx', '--no-run', '--json'], { cwd: project, encoding: 'utf8' });
  assert.equal(analysis.status, 0, analysis.stderr);
  assert.equal(JSON.parse(analysis.stdout).kind, 'analyze');
});

test('every package src/ and cli/ import is a runtime dependency; TF.js comes in sub-packages, not the umbrella', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const deps = new Set(Object.keys(pkg.dependencies));
  const bare = new Set<string>();
  for (const [, text] of readTree(ROOT, ['src', 'cli'])) {
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\bresolve\(\s*)(['"])(@?[a-z][a-z0-9._/-]*)\1/g)) {
      if (m[2].startsWith('node:')) continue;
      const parts = m[2].split('/');
      bare.add(m[2].startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
    }
  }
  assert.ok(bare.has('@tensorflow/tfjs-core') && bare.has('onnxruntime-node'), `imports read: ${[...bare].join(', ')}`);
  assert.deepEqual([...bare].filter((b) => !deps.has(b)).sort(), [], 'imported but not a dependency');
  assert.ok(!deps.has('@tensorflow/tfjs'), 'the umbrella (tf.data, WebGL: 141 MB) is not a dependency');
  assert.ok(!deps.has('@tensorflow/tfjs-node'), 'tfjs-node stays optional (its install downloads libtensorflow)');
  const tf = [...deps].filter((d) => d.startsWith('@tensorflow/')).sort();
  assert.deepEqual(tf, ['@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-converter', '@tensorflow/tfjs-core', '@tensorflow/tfjs-layers']);
  // One TF.js version throughout: sub-packages of different versions would each bring their own core.
  assert.equal(new Set(tf.map((d) => pkg.dependencies[d])).size, 1, tf.map((d) => `${d}@${pkg.dependencies[d]}`).join(', '));
});
