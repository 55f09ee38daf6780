/**
 * Preloaded into a measured process (`node --import <this file's URL> ...`) by bench/large.ts: when
 * the process exits (normally or through process.exit), writes its process.resourceUsage() to the
 * file named by KPRUNE_BENCH_RUSAGE_FILE. maxRSS is the process's lifetime peak in KiB, worker
 * threads included. A process killed by a signal writes nothing, which the bench reports.
 */
import { writeFileSync } from 'node:fs';

const file = process.env.KPRUNE_BENCH_RUSAGE_FILE;
if (file) {
  process.on('exit', (code) => {
    const u = process.resourceUsage();
    writeFileSync(file, JSON.stringify({ maxRssKiB: u.maxRSS, userMs: u.userCPUTime / 1000, systemMs: u.systemCPUTime / 1000, exitCode: code }));
  });
}
