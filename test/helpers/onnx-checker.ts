/**
 * The ONNX project's own checker (Debian python3-onnx, which .ci/run installs), run on files kprune
 * wrote: an independent judge of every model the test suite produces.
 */
import { spawnSync } from 'node:child_process';

const PYTHON = '/usr/bin/python3';

let available: boolean | undefined;

/** Whether python3 with the onnx package is installed (asked once). */
export function onnxCheckerAvailable(): boolean {
  available ??= spawnSync(PYTHON, ['-c', 'import onnx'], { encoding: 'utf8' }).status === 0;
  return available;
}

const CHECK = `
import sys, onnx
for p in sys.argv[1:]:
    try:
        onnx.checker.check_model(onnx.load(p), full_check=True)
    except Exception as e:
        print(p + ': ' + str(e).splitlines()[0], file=sys.stderr)
        sys.exit(1)
print('checked', len(sys.argv) - 1)
`;

/** Runs `onnx.checker.check_model(..., full_check=True)` on each file; null if all pass, else why. */
export function checkOnnxFiles(files: string[]): string | null {
  if (files.length === 0) return null;
  const r = spawnSync(PYTHON, ['-c', CHECK, ...files], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.includes(`checked ${files.length}`)) return null;
  return r.stderr.split('\n').filter(Boolean).slice(-1)[0] ?? `exit ${r.status}`;
}
