/**
 * Progress on stderr: on a terminal, one line redrawn in place (phase, bar, units done/total, rate
 * and ETA); elsewhere (CI logs, pipes), plain lines: one when a phase starts and at most one every
 * few seconds within it, so that a long run shows it is alive without flooding a log. Off with
 * --quiet and with --json.
 */
import { terminalSafe } from '../src/index.js';
import type { Progress } from '../src/index.js';

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

/** Seconds between two plain lines of the same phase. */
export const PLAIN_INTERVAL_MS = 5000;

/**
 * Nothing is printed before a run has lasted this long: a quick run (or a quick refusal of bad
 * input, which is one line on stderr) needs no progress, and a log is not cluttered by it.
 */
export const PLAIN_DELAY_MS = 2000;

/** Plain lines for logs: each phase once when it starts, then at most every PLAIN_INTERVAL_MS. */
function plainView(stream: NodeJS.WritableStream, intervalMs: number, delayMs: number): ProgressView {
  const start = performance.now();
  let phase = '';
  let last = 0;
  return {
    update(p) {
      const now = performance.now();
      if (now - start < delayMs) {
        phase = p.phase; // a phase begun during the delay is shown once it is over
        last = -Infinity;
        return;
      }
      if (p.phase === phase && now - last < intervalMs) return;
      phase = p.phase;
      last = now;
      let line = `kprune: ${p.phase}`;
      if (p.total !== undefined && p.done !== undefined && p.total > 0) line += ` ${p.done}/${p.total} ${p.unit ?? ''}`.trimEnd();
      if (p.detail) line += ` (${p.detail})`;
      stream.write(`${line}\n`);
    },
    done() {},
  };
}

export function progressView(enabled: boolean, stream: NodeJS.WriteStream = process.stderr, intervalMs = PLAIN_INTERVAL_MS, delayMs = PLAIN_DELAY_MS): ProgressView {
  if (enabled && stream.isTTY !== true) return plainView(stream, intervalMs, delayMs);
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
