/** Running one benchmark measurement in a fresh Node process (bench/worker.ts) and reading its result line. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RESULT_PREFIX, WorkerResult } from './protocol.js';

const workerScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.js');

export interface RunRecord extends WorkerResult {
  /** Parent-side wall time of the whole child process (Node start-up and imports included). */
  processMs: number;
}

export function runWorker(args: string[], timeoutMs: number): Promise<RunRecord> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [workerScript, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const processMs = performance.now() - t0;
      const line = out.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (code !== 0 || !line) {
        reject(new Error(`worker ${args.join(' ')} failed (exit ${code ?? signal}):\n${err.trim() || out.trim()}`));
        return;
      }
      resolve({ ...(JSON.parse(line.slice(RESULT_PREFIX.length)) as WorkerResult), processMs });
    });
  });
}
