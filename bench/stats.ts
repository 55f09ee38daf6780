import os from 'node:os';
/** Small statistics and formatting helpers for the benchmark. */

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function min(xs: number[]): number {
  return xs.reduce((a, b) => Math.min(a, b), Infinity);
}

export function max(xs: number[]): number {
  return xs.reduce((a, b) => Math.max(a, b), -Infinity);
}

/** Milliseconds with a sensible number of digits. */
export function fmtMs(ms: number): string {
  if (ms >= 10_000) return ms.toFixed(0);
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}

export function fmtNum(x: number, digits = 1): string {
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function markdownTable(header: string[], rows: string[][], align: ('l' | 'r')[]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const sep = `|${align.map((a) => (a === 'r' ? '---:' : ':---')).join('|')}|`;
  return [line(header), sep, ...rows.map(line)].join('\n');
}

/** The machine a benchmark ran on, recorded beside its figures. */
export function machineInfo(): { cpu: string; cores: number; totalMemGiB: number; node: string; platform: string } {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    totalMemGiB: os.totalmem() / 2 ** 30,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
}
