/**
 * How a page was made: the command line, the date, the kprune version and the machine. Figures
 * such as latency mean little without the machine, and a page found in a folder weeks later must
 * say how to make it again. Given by the caller, so that the same report with the same RunInfo
 * renders to the same bytes (and a page rendered without one stays reproducible).
 */
import os from 'node:os';
import { esc } from './html-escape.js';
import { VERSION } from '../version.js';

export interface RunInfo {
  /** As typed, e.g. "kprune model.onnx --shape cross --report r.html". */
  commandLine: string;
  /** ISO 8601, UTC. */
  date: string;
  version: string;
  /** CPU model, cores, OS, Node version. */
  machine: string;
}

/** A word as a POSIX shell would need it, so that the command line can be pasted back. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * This process's RunInfo. Without a command line from the caller (the CLI gives its own), the
 * process's: the script and its arguments.
 */
export function currentRunInfo(commandLine?: string, now = new Date()): RunInfo {
  const cpus = os.cpus();
  const cpu = cpus[0]?.model?.replace(/\s+/g, ' ').trim() || 'unknown CPU';
  return {
    commandLine: commandLine ?? ['node', ...process.argv.slice(1)].map(shellQuote).join(' '),
    date: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    version: VERSION,
    machine: `${cpu}, ${cpus.length} logical cores, ${os.platform()} ${os.arch()} ${os.release()}, Node ${process.version}`,
  };
}

export function runInfoHtml(run: RunInfo | undefined): string {
  if (!run) return '';
  return '<dl class="run-info">'
    + `<dt>command</dt><dd><code>${esc(run.commandLine)}</code></dd>`
    + `<dt>date</dt><dd><time datetime="${esc(run.date)}">${esc(run.date.replace('T', ' ').replace('Z', ' UTC'))}</time></dd>`
    + `<dt>kprune</dt><dd>${esc(run.version)}</dd>`
    + `<dt>machine</dt><dd>${esc(run.machine)}</dd>`
    + '</dl>';
}
