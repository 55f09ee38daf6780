/**
 * No spread of an array into a call anywhere in src/ or cli/. `out.push(...items)` and
 * `Math.max(...values)` put every element on the stack and throw "Maximum call stack size
 * exceeded" above about 120,000 elements (issue 11: a model of 130,000 graph fields, a folder of
 * 130,000 images): src/util/arrays.ts has pushAll, maxOf and minOf for any length. Checked on the
 * syntax tree (TypeScript's parser), so array and object literals, where spreads are safe, pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(new URL('../..', import.meta.url).pathname);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('no array is spread into a function call in src/ or cli/', () => {
  const found: string[] = [];
  for (const file of [...sources(path.join(ROOT, 'src')), ...sources(path.join(ROOT, 'cli'))]) {
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (n: ts.Node): void => {
      if ((ts.isCallExpression(n) || ts.isNewExpression(n)) && (n.arguments ?? []).some(ts.isSpreadElement)) {
        found.push(`${path.relative(ROOT, file)}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1}: ${n.getText().slice(0, 80)}`);
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  assert.deepEqual(found, [], 'use pushAll / maxOf / minOf from src/util/arrays.ts');
});
