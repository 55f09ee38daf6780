/**
 * Options that would do nothing in the combination given are refused (exit 2) before any work:
 * a silently ignored `--budget` makes the user believe a figure was chosen that was not.
 * Only options the user gave count (on the command line or in --config), never defaults.
 */
import { Command } from 'commander';
import { KpruneError } from '../src/index.js';

const flag = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

interface Rule {
  /** Options (attribute names) that need `when` to hold. */
  options: string[];
  when: (given: (k: string) => boolean, value: (k: string) => unknown) => boolean;
  /** Why they do nothing otherwise: "applies only with ...". */
  needs: string;
}

const PRUNE_RULES: Rule[] = [
  { options: ['budget'], when: (g, v) => v('shape') === 'auto' && !g('plan'), needs: '--shape auto (a budget is what auto chooses shapes under; --plan replays shapes already chosen)' },
  { options: ['shape', 'layerShape'], when: (g) => !g('plan'), needs: 'no --plan (a plan replays the shapes it holds)' },
  { options: ['lr', 'trainBatch', 'trainSamples', 'optimizer'], when: (g) => g('finetune'), needs: '--finetune <steps>' },
  { options: ['ridge'], when: (_g, v) => v('recover') !== 'none', needs: 'reconstruction (not with --recover none)' },
  { options: ['batch'], when: (g, v) => v('layout') === 'auto' || (v('run') !== false && v('latencyRuns') !== 0), needs: '--layout auto or a latency comparison (not with --latency-runs 0 or --no-run)' },
  { options: ['latencyRuns', 'threads'], when: (_g, v) => v('run') !== false, needs: 'a run of the model (not with --no-run)' },
  { options: ['verbose'], when: (_g, v) => !v('json'), needs: 'the text summary (not with --json)' },
];

const COMPARE_RULES: Rule[] = [
  { options: ['batch'], when: (_g, v) => v('latencyRuns') !== 0, needs: 'a latency comparison (not with --latency-runs 0)' },
];

function check(cmd: Command, rules: Rule[]): void {
  const given = (k: string) => {
    const source = cmd.getOptionValueSource(k);
    return (source === 'cli' || source === 'config') && cmd.getOptionValue(k) !== undefined;
  };
  const value = (k: string) => cmd.getOptionValue(k);
  for (const rule of rules) {
    const useless = rule.options.filter(given);
    if (useless.length > 0 && !rule.when(given, value)) {
      const names = useless.map(flag).join(', ');
      throw new KpruneError('usage', `${names} ${useless.length > 1 ? 'do' : 'does'} nothing here: ${useless.length > 1 ? 'they apply' : 'it applies'} only with ${rule.needs}`);
    }
  }
}

export const checkPruneCombos = (cmd: Command) => check(cmd, PRUNE_RULES);
export const checkCompareCombos = (cmd: Command) => check(cmd, COMPARE_RULES);
