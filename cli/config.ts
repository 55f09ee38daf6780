/**
 * `--config kprune.json`: any option of the command, by its long name in camelCase (`shape`,
 * `budget`, `data`, `calib`, `maxDrop`, ...). Options given on the command line win. Values go
 * through the same parsing and validation as on the command line.
 */
import { Command } from 'commander';
import { KpruneError } from '../src/index.js';
import type { RunInput } from '../src/index.js';
import { readJsonFile } from './output.js';

export async function applyConfig(cmd: Command, file: string): Promise<void> {
  let doc: unknown;
  try {
    doc = await readJsonFile(file);
  } catch (e) {
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
    let parsed: unknown = value;
    if (option.isBoolean()) {
      if (typeof value !== 'boolean') throw new KpruneError('usage', `"${key}" takes true or false in the config file`, { file });
    } else {
      const text = Array.isArray(value) ? value.join(',') : typeof value === 'object' && value !== null ? '' : String(value);
      if (key === 'layerShape' && typeof value === 'object' && value !== null && !Array.isArray(value)) {
        parsed = value; // { "node name": "cross" }
      } else {
        try {
          parsed = option.parseArg ? option.parseArg(text, undefined) : text;
        } catch (e) {
          throw new KpruneError('usage', `"${key}" in the config file: ${e instanceof Error ? e.message : String(e)}`, { file });
        }
        if (option.argChoices && !option.argChoices.includes(text)) {
          throw new KpruneError('usage', `"${key}" must be one of ${option.argChoices.join(', ')}, got "${text}"`, { file });
        }
      }
    }
    cmd.setOptionValueWithSource(key, parsed, 'config');
  }
}

/** The files the command line itself read (a config, a plan): the run's outputs may not replace them. */
export function cliInputs(opts: { config?: string; plan?: string }): RunInput[] {
  return [
    ...(opts.config ? [{ path: opts.config, role: 'the config file' }] : []),
    ...(opts.plan ? [{ path: opts.plan, role: 'the plan file' }] : []),
  ];
}
