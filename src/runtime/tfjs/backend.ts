/**
 * One TF.js instance for kprune, on the fastest backend that works here: tfjs-node ('tensorflow')
 * when it is installed, else WebAssembly, else plain JavaScript ('cpu', about 30x slower than wasm
 * on a convolutional network). TF.js is imported on first use only, so ONNX runs never load it.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as TF from './tf.js';
import { KpruneError } from '../../errors.js';
import type { TfjsBackend } from '../../model/finetune.js';
import { registerWasmConvGradients } from './wasm-conv-grads.js';

export type { TfjsBackend };

export type Tf = typeof TF;

export interface TfjsRuntime {
  tf: Tf;
  backend: TfjsBackend;
  /** For reports: "TF.js 4.22.0 (wasm backend)". */
  description: string;
  /** Why faster backends were not used, one line each. */
  notes: string[];
}

let pending: Promise<TfjsRuntime> | null = null;

/** The shared TF.js runtime, initialised once. */
export function tfjsRuntime(): Promise<TfjsRuntime> {
  pending ??= init().catch((e) => {
    pending = null;
    throw e;
  });
  return pending;
}

async function smokeTest(tf: Tf): Promise<void> {
  // A 3x3 convolution of ones: the backend must actually compute, not just register.
  const y = tf.tidy(() => tf.conv2d(tf.ones([1, 3, 3, 1]) as TF.Tensor4D, tf.ones([3, 3, 1, 1]) as TF.Tensor4D, 1, 'same'));
  const v = await y.data();
  y.dispose();
  if (v[4] !== 9) throw new Error(`the backend computed ${v[4]} for a test convolution (expected 9)`);
}

async function tryBackend(tf: Tf, name: TfjsBackend, notes: string[]): Promise<boolean> {
  try {
    if (!(await tf.setBackend(name))) throw new Error('it did not initialise');
    await tf.ready();
    await smokeTest(tf);
    return true;
  } catch (e) {
    notes.push(`${name}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    return false;
  }
}

async function init(): Promise<TfjsRuntime> {
  let tf: Tf;
  try {
    tf = await import('./tf.js');
  } catch (e) {
    throw new KpruneError('runtime', `cannot load TF.js (@tensorflow/tfjs-core, -layers, -converter, -backend-cpu): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const notes: string[] = [];

  // tfjs-node is optional: a name in a variable keeps TypeScript from requiring its types.
  const nodeBinding = '@tensorflow/tfjs-node';
  try {
    await import(nodeBinding);
    if (await tryBackend(tf, 'tensorflow', notes)) return runtime(tf, 'tensorflow', notes);
  } catch (e) {
    notes.push(`tensorflow: @tensorflow/tfjs-node is not installed (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
  }

  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // The .wasm binaries sit beside the package's entry point; Emscripten reads them with node:fs.
    const entry = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(path.dirname(entry) + path.sep);
    if (await tryBackend(tf, 'wasm', notes)) {
      // So that TF.js's own convolution gradients work on wasm too (GraphModel fine-tuning, users' code).
      registerWasmConvGradients(tf);
      return runtime(tf, 'wasm', notes);
    }
  } catch (e) {
    notes.push(`wasm: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }

  // The cpu backend greets Node users on the console; production mode keeps the library quiet.
  tf.env().set('PROD', true);
  if (await tryBackend(tf, 'cpu', notes)) return runtime(tf, 'cpu', notes);
  throw new KpruneError('runtime', `no TF.js backend works here (${notes.join('; ')})`);
}

function runtime(tf: Tf, backend: TfjsBackend, notes: string[]): TfjsRuntime {
  return { tf, backend, description: `TF.js ${tf.version_core} (${backend} backend)`, notes };
}
