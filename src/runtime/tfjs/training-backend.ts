/**
 * The TF.js instance fine-tuning (of ONNX and of TF.js models) and the ONNX executor run on. Backend choice is kprune's shared
 * one (backend.ts: tfjs-node when installed, else wasm, else cpu); benchmarks and tests can
 * ask for a named backend instead, to compare.
 */
import { KpruneError } from '../../errors.js';
import { TfjsBackend, TfjsRuntime, tfjsRuntime } from './backend.js';
import type { ConvGradients } from './conv.js';

export type { TfjsBackend, TfjsRuntime };

/**
 * The shared runtime, switched to `backend` when one is named. Switching is process-wide in TF.js:
 * meant for benchmarks and tests, which run one backend per process or switch back.
 */
export async function trainingRuntime(backend?: TfjsBackend): Promise<TfjsRuntime> {
  const rt = await tfjsRuntime();
  if (!backend || backend === rt.tf.getBackend()) return { ...rt, backend: (rt.tf.getBackend() as TfjsBackend) ?? rt.backend, description: describe(rt, rt.tf.getBackend() as TfjsBackend) };
  if (backend === 'cpu') rt.tf.env().set('PROD', true);
  let ok = false;
  try {
    ok = await rt.tf.setBackend(backend);
    await rt.tf.ready();
  } catch {
    ok = false;
  }
  if (!ok) throw new KpruneError('runtime', `the TF.js ${backend} backend is not available here (${rt.notes.join('; ') || 'it did not initialise'})`);
  return { ...rt, backend, description: describe(rt, backend) };
}

function describe(rt: TfjsRuntime, backend: TfjsBackend): string {
  return `TF.js ${rt.tf.version_core} (${backend} backend)`;
}

/**
 * Gradient formulas per backend: tfjs-node's native backprop kernels are fast, so its own
 * gradients are used there (kprune's take over where TF.js has none: dilated convolutions); the
 * wasm and cpu backends get kprune's forward-convolution gradients (see conv.ts for figures).
 */
export function defaultGradients(backend: string): ConvGradients {
  return backend === 'tensorflow' ? 'tfjs' : 'kprune';
}
