/**
 * Fuzz family: path spellings that resolve to one file, and outputs that alias inputs.
 *
 * Each case is a copy of the external-data fixture in a fresh folder whose tensors name their data
 * file in seeded spellings (`./`, `sub/../`, a symlink, a hard link, a linked folder, and distinct
 * files whose output names would collide: `a\weights.bin`, `..weights.bin`, `onnx`), run through
 * `prune()` (what the CLI calls) with a seeded output, report and masks path: fresh, or another
 * spelling of the model, of its data, of each other, a folder, a missing folder.
 *
 * The oracle knows from the construction what each path names. A case whose outputs are all fresh
 * and distinct must succeed with an output equal to the masked original; any other must fail with
 * a KpruneError (the CLI's exit 2) having written nothing. Either way every input keeps its bytes.
 *
 * `node dist/fuzz/families/paths.js [cases] [seed]` runs it alone; test/fuzz-paths.test.ts runs a
 * few cases in the suite.
 */
import { mkdirSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isKpruneError, prune } from '../../src/index.js';
import { mulberry32 } from '../../src/util/random.js';
import { Extra, added, assertCorrectOutput, assertUnchanged, externalVariant, fingerprint } from '../../test/helpers/paths.js';

/** A spelling of a data location, with the files it needs. `same`: it leads to weights.bin. */
interface Spelling { location: string; extras: Record<string, Extra>; same: boolean }

const SPELLINGS: Spelling[] = [
  { location: 'weights.bin', extras: {}, same: true },
  { location: './weights.bin', extras: {}, same: true },
  { location: './/weights.bin', extras: {}, same: true },
  { location: 'sub/../weights.bin', extras: { 'sub/.keep': { copy: true } }, same: true },
  { location: 'link.bin', extras: { 'link.bin': { symlink: 'weights.bin' } }, same: true },
  { location: 'hard.bin', extras: { 'hard.bin': { hardlink: 'weights.bin' } }, same: true },
  { location: 'here/weights.bin', extras: { here: { symlink: '.' } }, same: true },
  { location: 'a\\weights.bin', extras: { 'a\\weights.bin': { copy: true } }, same: false },
  { location: 'a/weights.bin', extras: { 'a/weights.bin': { copy: true } }, same: false },
  { location: '..weights.bin', extras: { '..weights.bin': { copy: true } }, same: false },
  { location: 'onnx', extras: { onnx: { copy: true } }, same: false },
];

/** An output path and what it names: a fresh file (`fresh:<id>`), an input, or something unwritable. */
interface Target { path: string; names: string; extras?: Record<string, Extra> }

const MODEL_OUTPUTS: Target[] = [
  { path: 'out.onnx', names: 'fresh:out' },
  { path: 'o/out.onnx', names: 'fresh:o-out', extras: { 'o/.keep': { copy: true } } },
  { path: 'model.kpruned.onnx', names: 'fresh:kpruned' },
  { path: 'model.onnx', names: 'input:model' },
  { path: './sub/../model.onnx', names: 'input:model', extras: { 'sub/.keep': { copy: true } } },
  { path: 'here/model.onnx', names: 'input:model', extras: { here: { symlink: '.' } } },
  { path: 'latest.onnx', names: 'input:model', extras: { 'latest.onnx': { symlink: 'model.onnx' } } },
  { path: 'hardmodel.onnx', names: 'input:model', extras: { 'hardmodel.onnx': { hardlink: 'model.onnx' } } },
  { path: 'folder.onnx', names: 'unwritable', extras: { 'folder.onnx/.keep': { copy: true } } },
  { path: 'missing/out.onnx', names: 'unwritable' },
];

const SIDE_OUTPUTS: Target[] = [
  { path: 'r.json', names: 'fresh:r' },
  { path: 'r.html', names: 'fresh:r-html' },
  { path: 'weights.bin', names: 'input:weights' },
  { path: './hard.bin', names: 'input:weights', extras: { 'hard.bin': { hardlink: 'weights.bin' } } },
  { path: 'link.bin', names: 'input:weights', extras: { 'link.bin': { symlink: 'weights.bin' } } },
  { path: 'model.onnx', names: 'input:model' },
  { path: 'out.onnx', names: 'fresh:out' },
  { path: 'sub', names: 'unwritable', extras: { 'sub/.keep': { copy: true } } },
  { path: 'missing/r.json', names: 'unwritable' },
];

export interface PathCase {
  seed: number;
  locations: Spelling[];
  output: Target;
  report?: Target;
  masks?: Target;
}

export function pathCase(seed: number): PathCase {
  const rand = mulberry32(seed);
  const pick = <T>(list: T[]): T => list[Math.floor(rand() * list.length)];
  // The first tensor always reads weights.bin in some spelling, so outputs aliasing it alias a read.
  const locations = [pick(SPELLINGS.filter((s) => s.same)), ...Array.from({ length: 1 + Math.floor(rand() * 3) }, () => pick(SPELLINGS))];
  // Fresh about as often as not: the interesting failures are on both sides.
  const target = (list: Target[], fresh: number) => {
    const wantFresh = rand() < fresh;
    return pick(list.filter((t) => t.names.startsWith('fresh:') === wantFresh));
  };
  const side = () => (rand() < 0.4 ? undefined : target(SIDE_OUTPUTS, 0.7));
  return { seed, locations, output: target(MODEL_OUTPUTS, 0.6), report: side(), masks: side() };
}

/** Whether the oracle expects the case to be written: every output fresh, no two the same. */
function shouldWrite(c: PathCase): boolean {
  const outs = [c.output, c.report, c.masks].filter((t): t is Target => t !== undefined);
  return outs.every((t) => t.names.startsWith('fresh:')) && new Set(outs.map((t) => t.names)).size === outs.length;
}

function describe(c: PathCase): string {
  return `locations ${c.locations.map((l) => l.location).join(', ')}; -o ${c.output.path}${c.report ? `; report ${c.report.path}` : ''}${c.masks ? `; masks ${c.masks.path}` : ''}`;
}

/** Runs one case in `dir`; returns null when it holds, else what went wrong. */
export async function runPathCase(c: PathCase, dir: string, referenceDir: string): Promise<string | null> {
  const extras: Record<string, Extra> = {};
  for (const t of [...c.locations, c.output, c.report, c.masks]) Object.assign(extras, t?.extras ?? {});
  const model = externalVariant(dir, c.locations.map((l) => l.location), extras);
  const before = fingerprint(dir);
  const at = (t?: Target) => (t ? path.join(dir, t.path) : undefined);
  const expectWritten = shouldWrite(c);
  try {
    await prune(model, { shape: 'cross', layout: 'masked', output: at(c.output), report: at(c.report), emitMasks: at(c.masks), latencyRuns: 0 });
    if (!expectWritten) return `written, but an output names an input or cannot be written: ${describe(c)}`;
    await assertCorrectOutput(at(c.output)!, referenceDir);
    assertUnchanged(dir, before, describe(c));
  } catch (e) {
    if (!isKpruneError(e)) return `${e instanceof Error ? e.message : String(e)}: ${describe(c)}`;
    if (expectWritten) return `refused a valid case (${e.oneLine()}): ${describe(c)}`;
    const left = added(dir, before);
    if (left.length > 0) return `left ${left.join(', ')} after "${e.oneLine()}": ${describe(c)}`;
    try {
      assertUnchanged(dir, before, describe(c));
    } catch (f) {
      return f instanceof Error ? f.message : String(f);
    }
  }
  return null;
}

export interface PathFuzzOutcome { cases: number; written: number; refused: number; failures: string[] }

export async function fuzzPaths(cases: number, seed: number, referenceDir: string): Promise<PathFuzzOutcome> {
  const root = mkdtempSync(path.join(tmpdir(), 'kprune-fuzz-paths-'));
  const outcome: PathFuzzOutcome = { cases: 0, written: 0, refused: 0, failures: [] };
  try {
    for (let i = 0; i < cases; i++) {
      const c = pathCase(seed + i);
      const dir = path.join(root, `case-${c.seed}`);
      mkdirSync(dir);
      outcome.cases++;
      if (shouldWrite(c)) outcome.written++;
      else outcome.refused++;
      const problem = await runPathCase(c, dir, referenceDir);
      if (problem) outcome.failures.push(`seed ${c.seed}: ${problem}`);
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return outcome;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const cases = Number(process.argv[2] ?? 200);
  const seed = Number(process.argv[3] ?? Date.now() % 1e6);
  const reference = mkdtempSync(path.join(tmpdir(), 'kprune-fuzz-paths-ref-'));
  const outcome = await fuzzPaths(cases, seed, reference);
  rmSync(reference, { recursive: true, force: true });
  console.log(`fuzz paths: ${outcome.cases} cases from seed ${seed}: ${outcome.written} to write, ${outcome.refused} to refuse, ${outcome.failures.length} failures`);
  for (const f of outcome.failures) console.log(`  ${f}`);
  process.exitCode = outcome.failures.length > 0 ? 1 : 0;
}
