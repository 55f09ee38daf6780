/**
 * `--config kprune.json`: any option of the command, by its long name in camelCase (`shape`,
 * `budget`, `data`, `calib`, `maxDrop`, ...). Options given on the command line win. Values go
 * through the same parsing and validation as on the command line, after a check of their JSON type:
 * `"calib": {}` or `"layerShape": 5` is an error naming the key, never a silent 0 or a crash.
 */
import { Command, Option } from 'commander';
import { KpruneError, reasonOf } from '../src/index.js';
import type { RunInput } from '../src/index.js';
import { readJsonFile } from './output.js';
import { collectPairs } from './parse.js';

/** Options that take several numbers: a JSON list of them is accepted as well as "a,b,c". */
const LIST_OPTIONS = new Set(['size', 'mean', 'std', 'inputShape']);

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}...` : v}"`;
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

export async function applyConfig(cmd: Command, file: string): Promise<void> {
  let doc: unknown;
  try {
    doc = await readJsonFile(file);
  } catch (e) {
    if (e instanceof KpruneError) throw e;
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not valid JSON (${e instanceof Error ? e.message : String(e)})`;
    throw new KpruneError('usage', why, { file });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new KpruneError('usage', 'a config file holds one JSON object of options', { file });
  }
  const options = new Map(cmd.options.map((o) => [o.attributeName(), o]));
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const option = options.get(key);
    if (!option || key === 'config') {
      throw new KpruneError('usage', `unknown option "${key}" in the config file`, { file, suggestion: `known: ${[...options.keys()].filter((k) => k !== 'config').join(', ')}` });
    }
    if (cmd.getOptionValueSource(key) === 'cli') continue;
    cmd.setOptionValueWithSource(key, configValue(option, key, value, file), 'config');
  }
}

/** The files the command line itself read (a config, a plan): the run's outputs may not replace them. */
export function cliInputs(opts: { config?: string; plan?: string }): RunInput[] {
  return [
    ...(opts.config ? [{ path: opts.config, role: 'the config file' }] : []),
    ...(opts.plan ? [{ path: opts.plan, role: 'the plan file' }] : []),
  ];
}

function configValue(option: Option, key: string, value: unknown, file: string): unknown {
  const wrong = (expected: string): never => {
    throw new KpruneError('usage', `"${key}" in the config file must be ${expected}, got ${kindOf(value)}`, { file });
  };
  // Flags without a value: --json, and the negations (--no-run is "run": false).
  if (option.isBoolean() || option.negate) return typeof value === 'boolean' ? value : wrong('true or false');
  if (key === 'layerShape') return layerShapes(value, wrong, file);
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' && Number.isFinite(value)) text = String(value);
  else if (LIST_OPTIONS.has(key) && Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'number' && Number.isFinite(v))) text = value.join(',');
  else return wrong(LIST_OPTIONS.has(key) ? 'a list of numbers or a string' : option.argChoices ? `one of ${option.argChoices.join(', ')}` : 'a number or a string');
  let parsed: unknown;
  try {
    parsed = option.parseArg ? option.parseArg(text, undefined) : text;
  } catch (e) {
    throw new KpruneError('usage', `"${key}" in the config file: ${reasonOf(e, file)}`, { file });
  }
  if (option.argChoices && !option.argChoices.includes(text)) {
    throw new KpruneError('usage', `"${key}" must be one of ${option.argChoices.join(', ')}, got "${text}"`, { file });
  }
  return parsed;
}

/** `{ "node name": "cross" }`, `["node=cross", ...]` or `"node=cross"`. */
function layerShapes(value: unknown, wrong: (expected: string) => never, file: string): Record<string, string> {
  const expected = 'an object of layer names to shapes, or "name=shape" strings';
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const out: Record<string, string> = {};
    for (const [name, shape] of Object.entries(value)) {
      if (typeof shape !== 'string') return wrong(`${expected} (the shape of "${name}" is ${kindOf(shape)})`);
      out[name] = shape;
    }
    return out;
  }
  const items = typeof value === 'string' ? [value] : Array.isArray(value) && value.every((v) => typeof v === 'string') ? value as string[] : wrong(expected);
  let out: Record<string, string> = {};
  for (const item of items) {
    try {
      out = collectPairs(item, out);
    } catch (e) {
      throw new KpruneError('usage', `"layerShape" in the config file: ${reasonOf(e, file)}`, { file });
    }
  }
  return out;
}
