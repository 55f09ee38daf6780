/**
 * A progress line on stderr: phase, bar, units done/total, rate and ETA. Drawn only on a TTY and
 * never with --json, so pipelines and logs stay clean.
 */
import type { Progress } from '../src/pipeline/progress.js';
import { terminalSafe } from '../src/index.js';

export interface ProgressView {
  update: (p: Progress) => void;
  done: () => void;
}

const WIDTH = 24;

function seconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.round(s)}s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

export function progressView(enabled: boolean, stream: NodeJS.WriteStream = process.stderr): ProgressView {
  const tty = enabled && stream.isTTY === true;
  let phase = '';
  let phaseStart = 0;
  let drawn = false;
  const clear = () => {
    if (drawn) stream.write('\r\x1b[2K');
    drawn = false;
  };
  return {
    update(p) {
      if (!tty) return;
      const now = performance.now();
      if (p.phase !== phase) {
        phase = p.phase;
        phaseStart = now;
      }
      let line = `kprune: ${p.phase}`;
      if (p.total !== undefined && p.done !== undefined && p.total > 0) {
        const frac = Math.min(1, p.done / p.total);
        const fill = Math.round(frac * WIDTH);
        const elapsed = (now - phaseStart) / 1000;
        const rate = p.done > 0 && elapsed > 0 ? p.done / elapsed : 0;
        const eta = rate > 0 ? (p.total - p.done) / rate : Infinity;
        line += ` [${'#'.repeat(fill)}${'-'.repeat(WIDTH - fill)}] ${p.done}/${p.total} ${p.unit ?? ''}`;
        if (p.done > 0) line += `  ${rate.toFixed(rate < 10 ? 2 : 0)} ${p.unit ?? 'units'}/s  ETA ${seconds(eta)}`;
      } else {
        line += '…';
      }
      if (p.detail) line += `  ${terminalSafe(p.detail)}`; // a layer name, from the model file
      const cols = stream.columns ?? 100;
      stream.write(`\r\x1b[2K${line.slice(0, cols - 1)}`);
      drawn = true;
    },
    done: clear,
  };
}
