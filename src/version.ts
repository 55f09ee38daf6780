import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder of kprune's package.json (the repository, or node_modules/kprune): files that ship
 * beside the code (the bundled data, the training worker) are found from here. Walked up to from
 * this module, because the module is not always where tsc put it: the command line runs as one
 * bundled file (dist/cli/kprune.js), the library from dist/src/.
 */
export const PACKAGE_ROOT: string = (() => {
  const start = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    try {
      if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === 'kprune') return dir;
    } catch {
      // Not kprune's (unreadable or not JSON): keep walking up.
    }
    if (path.dirname(dir) === dir) return path.resolve(start, '..', '..');
  }
})();

/** The package version, read from package.json so it cannot drift. */
export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
