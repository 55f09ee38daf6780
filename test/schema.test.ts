/**
 * The JSON kprune prints is what its published schemas (schema/*.schema.json, generated from the
 * report types by `npm run schema`) say: every kind of document, with and without data, validated
 * with Ajv. The schemas forbid unknown properties, so a report field added without regenerating
 * them fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { analyze, compare, masksDocument, prune } from '../src/index.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

const ajv = new Ajv({ allErrors: true, strict: false });
const SCHEMAS = path.resolve(FIXTURES, '..', 'schema');
const dir = tempDir();
const vgg = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
const SUBSET = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');

function validate(schema: string, doc: unknown): void {
  const check = ajv.compile(JSON.parse(readFileSync(path.join(SCHEMAS, schema), 'utf8')));
  // Through JSON, as a pipeline reads it.
  const ok = check(JSON.parse(JSON.stringify(doc)));
  assert.ok(ok, `${schema}: ${ajv.errorsText(check.errors)}`);
}

test('prune, analyze, compare and masks documents match their schemas', async () => {
  const plain = await prune(vgg, { shape: 'qh', output: path.join(dir, 'a.onnx'), latencyRuns: 3 });
  validate('prune-report.schema.json', plain);
  const full = await prune(vgg, {
    shape: 'auto', budget: 0.7, layout: 'decomposed', output: path.join(dir, 'b.onnx'), latencyRuns: 3, maxDrop: 5,
    data: { data: SUBSET, calib: 32, eval: 50 },
  });
  validate('prune-report.schema.json', full);
  const auto = await prune(vgg, { shape: 'cross', layout: 'auto', output: path.join(dir, 'c.onnx'), latencyRuns: 0 });
  validate('prune-report.schema.json', auto);
  validate('analyze-report.schema.json', await analyze(vgg));
  validate('compare-report.schema.json', await compare(vgg, path.join(dir, 'b.onnx'), { latencyRuns: 3, data: { data: SUBSET, eval: 50 }, maxDrop: 1 }));
  validate('compare-report.schema.json', await compare(vgg, path.join(dir, 'a.onnx'), { latencyRuns: 0 }));
  validate('masks.schema.json', masksDocument(full));
});

test('a document with an unknown field fails the schema (the check has teeth)', async () => {
  const doc = { ...(await analyze(vgg)), surprise: true };
  const check = ajv.compile(JSON.parse(readFileSync(path.join(SCHEMAS, 'analyze-report.schema.json'), 'utf8')));
  assert.equal(check(JSON.parse(JSON.stringify(doc))), false);
});
