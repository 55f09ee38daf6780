/**
 * `npm run mutate`: applies each one-line mutation of mutations.ts to a copy of the repository,
 * runs the test files that should catch it, and prints which were caught. Exits 1 if any survived,
 * 2 if the list no longer fits the code (a text not found, or found twice; a mutation that does not
 * type-check; tests that fail without any mutation).
 *
 * The copy (a temporary folder with node_modules linked) is built once with tsc; each mutant then
 * re-emits only its own file (ts.transpileModule), so a mutant costs its tests, not a build. All
 * mutants are type-checked up front, a few tsc runs in all.
 *
 *   npm run mutate                      every mutation, each with the test files that catch it
 *   npm run mutate -- --only a,b        some of them
 *   npm run mutate -- --full            each with the whole suite (slow: the suite per mutant)
 *   npm run mutate -- --list            print the list
 *   npm run mutate -- --keep            keep the temporary copy
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { MUTATIONS, Mutation } from './mutations.js';

const ROOT = path.resolve(new URL('../..', import.meta.url).pathname);
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');
/** Not copied: built anew in the copy, linked, or not needed. */
const SKIP_TOP = new Set(['node_modules', 'dist', '.git']);
const TEST_TIMEOUT_MS = 15 * 60_000;

interface Args { only?: Set<string>; full: boolean; list: boolean; keep: boolean }

function parseArgs(argv: string[]): Args {
  const a: Args = { full: false, list: false, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === '--full') a.full = true;
    else if (v === '--list') a.list = true;
    else if (v === '--keep') a.keep = true;
    else if (v === '--only') a.only = new Set((argv[++i] ?? '').split(',').filter(Boolean));
    else throw new Error(`unknown argument ${v} (--only a,b | --full | --list | --keep)`);
  }
  return a;
}

function occurrences(text: string, part: string): number {
  let n = 0;
  for (let at = text.indexOf(part); at >= 0; at = text.indexOf(part, at + part.length)) n++;
  return n;
}

/** Every problem with the list against the code as it is: the list must fail loudly when the code moves. */
function checkList(list: Mutation[]): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const m of list) {
    if (ids.has(m.id)) problems.push(`mutation ${m.id}: the id is used twice`);
    ids.add(m.id);
    const file = path.join(ROOT, m.file);
    if (!existsSync(file)) {
      problems.push(`mutation ${m.id}: file ${m.file} not found`);
      continue;
    }
    const n = occurrences(readFileSync(file, 'utf8'), m.original);
    if (n === 0) problems.push(`mutation ${m.id}: text not found in ${m.file}: ${m.original}`);
    if (n > 1) problems.push(`mutation ${m.id}: text found ${n} times in ${m.file} (make it unique): ${m.original}`);
    if (m.original === m.replacement) problems.push(`mutation ${m.id}: the replacement is the original`);
    if (m.tests.length === 0) problems.push(`mutation ${m.id}: names no test that catches it`);
    for (const t of m.tests) if (!existsSync(path.join(ROOT, 'test', `${t}.test.ts`))) problems.push(`mutation ${m.id}: test file test/${t}.test.ts not found`);
  }
  return problems;
}

function copyRepo(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'kprune-mutate-'));
  cpSync(ROOT, dir, { recursive: true, filter: (src) => !SKIP_TOP.has(path.relative(ROOT, src).split(path.sep)[0]) });
  symlinkSync(realpathSync(path.join(ROOT, 'node_modules')), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

function tsc(dir: string, extra: string[] = []): { ok: boolean; output: string } {
  const r = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.json', ...extra], { cwd: dir, encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/**
 * Type-checks every mutant: as many at once as can be applied together (each text still found once
 * after the others of its round), in rounds. Returns the mutations that do not type-check, and why.
 */
function typeCheck(dir: string, list: Mutation[]): string[] {
  const failures: string[] = [];
  let left = [...list];
  while (left.length > 0) {
    const round: Mutation[] = [];
    const later: Mutation[] = [];
    const texts = new Map<string, string>();
    for (const m of left) {
      const file = path.join(dir, m.file);
      const text = texts.get(file) ?? readFileSync(file, 'utf8');
      // Two mutations of the same text (or overlapping ones) go to different rounds.
      if (occurrences(text, m.original) === 1) {
        texts.set(file, text.replace(m.original, m.replacement));
        round.push(m);
      } else {
        later.push(m);
      }
    }
    if (round.length === 0) throw new Error(`cannot apply ${later.map((m) => m.id).join(', ')} on their own`);
    const saved = new Map([...texts.keys()].map((f) => [f, readFileSync(f, 'utf8')]));
    for (const [f, t] of texts) writeFileSync(f, t);
    const r = tsc(dir, ['--noEmit']);
    for (const [f, t] of saved) writeFileSync(f, t);
    if (!r.ok) {
      for (const m of round) {
        const lines = r.output.split('\n').filter((l) => l.startsWith(m.file + '('));
        // Only the errors on this mutation's line count against it.
        const text = saved.get(path.join(dir, m.file))!;
        const line = text.slice(0, text.indexOf(m.original)).split('\n').length;
        const mine = lines.filter((l) => l.startsWith(`${m.file}(${line},`));
        if (mine.length > 0) failures.push(`mutation ${m.id} does not type-check: ${mine.join('; ')}`);
      }
      if (failures.length === 0) failures.push(`the mutants of one round do not type-check together:\n${r.output}`);
    }
    left = later;
  }
  return failures;
}

/** `npm run bundle` in the copy: the bundled command line from the emitted modules. */
function bundle(dir: string): boolean {
  const r = spawnSync('npm', ['run', '-s', 'bundle'], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) console.error(`the copy does not bundle:\n${r.stderr}`);
  return r.status === 0;
}

/** The compiled JavaScript of one source file, as tsc would emit it (module syntax kept). */
function emit(dir: string, file: string, source: string): string {
  const config = ts.getParsedCommandLineOfConfigFile(path.join(dir, 'tsconfig.json'), {}, {
    ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')); },
  })!;
  const options = { ...config.options, module: ts.ModuleKind.ES2022, sourceMap: false, declaration: false, inlineSourceMap: false };
  return ts.transpileModule(source, { compilerOptions: options, fileName: path.join(dir, file) }).outputText;
}

interface Outcome { caught: boolean; failed: string[]; seconds: number; timedOut: boolean }

function runTests(dir: string, files: string[] | 'all'): Promise<Outcome> {
  const t0 = performance.now();
  const targets = files === 'all' ? ['dist/test/'] : files.map((f) => `dist/test/${f}.test.js`);
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env.KPRUNE_WRITE_LOG;
    const child = spawn(process.execPath, ['--test', '--test-reporter=tap', '--test-concurrency=2', ...targets], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', () => {});
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, TEST_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      // Failed tests: "not ok" lines at any depth, without the file-level wrappers.
      const all = [...out.matchAll(/^\s*not ok \d+ - (.+)$/gm)].map((m) => m[1]);
      const named = all.filter((n) => !n.startsWith(dir));
      // A file that fails as a whole (e.g. an assertion at load) has only its file-level line.
      const failed = named.length > 0 ? named : all.map((n) => `${path.relative(dir, n)} (the file failed)`);
      resolve({ caught: code !== 0, failed: [...new Set(failed)], seconds: (performance.now() - t0) / 1000, timedOut });
    });
  });
}

async function main(): Promise<number> {
  const began = performance.now();
  const args = parseArgs(process.argv.slice(2));
  const list = MUTATIONS.filter((m) => !args.only || args.only.has(m.id));
  if (args.only) for (const id of args.only) if (!MUTATIONS.some((m) => m.id === id)) throw new Error(`no mutation named ${id}`);
  if (args.list) {
    for (const m of list) console.log(`${m.id}\n  ${m.file}: ${m.why}\n  - ${m.original}\n  + ${m.replacement}\n  caught by: ${m.tests.join(', ')}`);
    return 0;
  }
  const problems = checkList(list);
  if (problems.length > 0) {
    for (const p of problems) console.error(p);
    console.error('the mutation list does not fit the code: update mutate/mutations.ts');
    return 2;
  }
  const dir = copyRepo();
  console.log(`copy: ${dir}`);
  try {
    const build = tsc(dir);
    if (!build.ok) {
      console.error(`the copy does not build:\n${build.output}`);
      return 2;
    }
    // The bundled command line (test/cli-bundle.test.ts runs it beside dist/cli/main.js).
    if (!bundle(dir)) return 2;
    const typeFailures = typeCheck(dir, list);
    if (typeFailures.length > 0) {
      for (const f of typeFailures) console.error(f);
      return 2;
    }
    const testsOf = (m: Mutation): string[] | 'all' => (args.full ? 'all' : m.tests);
    // Without mutations, the tests must pass, or a "caught" would mean nothing.
    const union = args.full ? 'all' : [...new Set(list.flatMap((m) => m.tests))].sort();
    console.log(`baseline: ${union === 'all' ? 'the whole suite' : union.join(', ')}`);
    const base = await runTests(dir, union);
    if (base.caught) {
      console.error(`the tests fail without any mutation (${base.failed.join('; ')}): fix that first`);
      return 2;
    }
    console.log(`baseline passed in ${base.seconds.toFixed(0)} s\n`);
    const results: { m: Mutation; o: Outcome }[] = [];
    for (const m of list) {
      const src = path.join(dir, m.file);
      const js = path.join(dir, 'dist', m.file.replace(/\.ts$/, '.js'));
      const source = readFileSync(src, 'utf8');
      const compiled = readFileSync(js, 'utf8');
      const mutated = source.replace(m.original, m.replacement);
      writeFileSync(src, mutated);
      writeFileSync(js, emit(dir, m.file, mutated));
      // Under src/ or cli/, the bundle holds the mutant too (a fraction of a second), so that the
      // bundle's tests compare like with like.
      const bundled = /^(src|cli)\//.test(m.file);
      let o: Outcome;
      try {
        if (bundled && !bundle(dir)) return 2;
        o = await runTests(dir, testsOf(m));
      } finally {
        writeFileSync(src, source);
        writeFileSync(js, compiled);
        if (bundled) bundle(dir);
      }
      results.push({ m, o });
      const by = o.timedOut ? 'timed out' : o.failed.slice(0, 3).join(' | ');
      console.log(`${o.caught ? 'caught  ' : 'SURVIVED'} ${m.id} (${o.seconds.toFixed(0)} s)${o.caught ? `: ${by}` : ` — ${m.why}; ran ${args.full ? 'the whole suite' : m.tests.join(', ')}`}`);
    }
    const survived = results.filter((r) => !r.o.caught);
    console.log(`\n${results.length - survived.length} of ${results.length} mutations caught${survived.length ? `; survived: ${survived.map((r) => r.m.id).join(', ')}` : ''} (${((performance.now() - began) / 60_000).toFixed(1)} min in all)`);
    return survived.length > 0 ? 1 : 0;
  } finally {
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
  }
}

main().then((code) => process.exit(code), (e: unknown) => {
  console.error(`mutate: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(2);
});
