/**
 * onnxruntime-node sessions for training graphs and their helpers, on a chosen execution provider.
 *
 * `device` names the providers onnxruntime-node can offer: cpu (always), cuda (Linux x64, when its
 * CUDA parts were installed), coreml (macOS), dml (DirectML, Windows). A provider this build does
 * not offer, or cannot start, is refused with one line saying which and why: training never falls
 * back to another device silently.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { ortApi } from './ort.js';
import { KpruneError } from '../../errors.js';

import type { Device } from '../../model/finetune.js';
export type { Device };
export const DEVICES: readonly Device[] = ['cpu', 'cuda', 'coreml', 'dml'];

export interface TrainingSessionOptions {
  /** Intra-op threads (default: onnxruntime's choice, one per physical core). */
  threads?: number;
  device?: Device;
}

/** What onnxruntime-node offers on this machine (each provider's name; bundled or not). */
export function offeredDevices(): string[] {
  try {
    return ortApi().listSupportedBackends().map((b) => b.name);
  } catch {
    return ['cpu'];
  }
}

export function describeDevice(device: Device, threads: number | undefined, workers = 0): string {
  const t = workers >= 2 ? `${workers} worker threads, one session each` : threads && threads > 0 ? `${threads} thread${threads === 1 ? '' : 's'}` : 'default threads';
  return `onnxruntime-node ${ortApi().env.versions.node ?? ''} (${device}, ${t})`;
}

/** At most this many training workers by default (each holds its own copy of the training graph). */
const MAX_DEFAULT_WORKERS = 8;

/**
 * How many worker threads a CPU training step is split over (train-pool.ts): `workers` when given,
 * else `threads` when given, else the machine's cores (at most MAX_DEFAULT_WORKERS); below 2, none.
 * Measured on the bundled models, batch 64, 2 cores (bench/train-pool.ts): 1.30-1.67x the steps/s of
 * one session with onnxruntime's default threads, 1.10-1.69x of one with two threads.
 */
export function trainingWorkers(o: { workers?: number; threads?: number; device?: Device }, work?: StepWork): number {
  if ((o.device ?? 'cpu') !== 'cpu') return 0;
  // Unasked, workers only where a step's compute outweighs sending the shards' gradients back.
  if (o.workers === undefined && o.threads === undefined && work && work.macs < WORKERS_MIN_MACS_PER_WEIGHT * work.trainedWeights) return 0;
  const n = o.workers ?? o.threads ?? Math.min(os.availableParallelism(), MAX_DEFAULT_WORKERS);
  return n >= 2 ? n : 0;
}

/** A training step's size: the forward MACs of one batch, and the weights that train. */
export interface StepWork {
  macs: number;
  trainedWeights: number;
}

/**
 * Below this many forward MACs per trained weight (kept position) in a step, one session
 * (onnxruntime's own threads) beats workers by default: each worker's gradient for every trained
 * weight is sent back and averaged on the main thread. Measured with two workers against one
 * session (bench/train-pool.ts, bench/train-deep.ts, 2 cores, kept-layout graphs, 2026-12-02 11:05):
 * ResNet-18 at batch 16 and 56 / 112 / 224 px, cross (338 / 1,271 / 4,754 MACs per kept weight)
 * 0.61x / 0.84x / 0.87x; the bundled models at batch 64, cross (14,600-131,600) 1.40-1.48x. (Before
 * the kept layout and the batch-innermost products, ResNet-18 at 224 px gained 1.40x from workers.)
 */
export const WORKERS_MIN_MACS_PER_WEIGHT = 8000;

/**
 * A provider onnxruntime-node lists but did not install (its CUDA and TensorRT parts are a separate
 * download): checked by its shared library beside the binding, so that the refusal is kprune's one
 * line and not onnxruntime's log of a failed library load.
 */
function missingProviderLibrary(device: Device): string | undefined {
  if (device !== 'cuda') return undefined;
  try {
    const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
    const dir = path.join(path.dirname(entry), '..', 'bin', 'napi-v6', os.platform(), os.arch());
    const lib = os.platform() === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
    return existsSync(path.join(dir, lib)) ? undefined : `${lib} is not installed beside onnxruntime-node's binding`;
  } catch {
    return undefined;
  }
}

/**
 * Refuses a device this machine's onnxruntime-node cannot offer, before any work is done (what can
 * be known without opening a session; a provider that is there but fails to start is refused when
 * the session opens).
 */
export function checkDevice(device: Device, file?: string): void {
  if (!DEVICES.includes(device)) throw new KpruneError('usage', `--device must be one of ${DEVICES.join(', ')}, got "${device}"`);
  const offered = offeredDevices();
  if (device !== 'cpu' && !offered.includes(device)) {
    throw new KpruneError('usage', `--device ${device}: onnxruntime-node ${ortApi().env.versions.node ?? ''} on ${os.platform()}-${os.arch()} has no ${device} execution provider (it offers ${offered.join(', ')})`, {
      file,
      suggestion: device === 'coreml' ? 'CoreML is offered on macOS' : device === 'dml' ? 'DirectML is offered on Windows' : 'use --device cpu',
    });
  }
  const missing = missingProviderLibrary(device);
  if (missing) {
    throw new KpruneError('usage', `--device ${device}: onnxruntime-node cannot start its ${device} execution provider (${missing})`, {
      file, suggestion: 'install onnxruntime-node with its CUDA parts (its install script downloads them unless ONNXRUNTIME_NODE_INSTALL=skip), or use --device cpu',
    });
  }
}

export async function openTrainingSession(bytes: Uint8Array, options: TrainingSessionOptions, file?: string): Promise<ort.InferenceSession> {
  const device = options.device ?? 'cpu';
  checkDevice(device, file);
  const opts: ort.InferenceSession.SessionOptions = {
    executionProviders: [device],
    intraOpNumThreads: options.threads ?? 0,
    interOpNumThreads: 1,
    logSeverityLevel: 4,
    graphOptimizationLevel: 'all',
    // Idle pool threads sleep instead of spinning: a step alternates between two sessions (teacher,
    // training graph), and one's spinning threads took the cores from the other's. Measured on the
    // bundled ResNet at 2 threads: 60-65 ms a step with distillation spinning, 33 ms not (CPU time
    // 120 ms vs 47); at 1 thread no difference.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
  try {
    return await ortApi().InferenceSession.create(bytes, opts);
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    if (device !== 'cpu') {
      throw new KpruneError('usage', `--device ${device}: onnxruntime-node cannot start its ${device} execution provider (${why})`, {
        file, cause: e,
        suggestion: device === 'cuda' ? 'install onnxruntime-node with its CUDA parts (its install script downloads them unless ONNXRUNTIME_NODE_INSTALL=skip), or use --device cpu' : 'use --device cpu',
      });
    }
    throw new KpruneError('runtime', `onnxruntime cannot load the training graph: ${why}`, { file, cause: e });
  }
}

/** Runs a session on ready tensors and returns the float32 outputs asked for (the data not copied). */
export async function runTensors(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, fetch: string[], file?: string): Promise<Map<string, { data: Float32Array; dims: number[] }>> {
  let r: ort.InferenceSession.OnnxValueMapType;
  try {
    r = await session.run(feeds, fetch);
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new KpruneError('runtime', `onnxruntime failed to run the training graph: ${why}`, { file, cause: e });
  }
  const out = new Map<string, { data: Float32Array; dims: number[] }>();
  for (const name of fetch) {
    const t = r[name] as ort.Tensor;
    if (t.type !== 'float32') throw new KpruneError('runtime', `training graph output "${name}" is ${t.type}, not float32`, { file });
    out.set(name, { data: t.data as Float32Array, dims: [...t.dims] });
  }
  return out;
}

/** Runs a session on float32 feeds and returns the float32 outputs asked for. */
export function runFloat(session: ort.InferenceSession, feeds: Record<string, { data: Float32Array; dims: number[] }>, fetch: string[], file?: string): Promise<Map<string, { data: Float32Array; dims: number[] }>> {
  const tensors: Record<string, ort.Tensor> = {};
  for (const [name, f] of Object.entries(feeds)) tensors[name] = new (ortApi().Tensor)('float32', f.data, f.dims);
  return runTensors(session, tensors, fetch, file);
}

/** Every output of one run, with its dims and element type (static shapes for the graph builder). */
export async function probeShapes(session: ort.InferenceSession, input: string, x: Float32Array, dims: number[], file?: string): Promise<Map<string, { dims: number[]; type: string }>> {
  let r: ort.InferenceSession.OnnxValueMapType;
  try {
    r = await session.run({ [input]: new (ortApi().Tensor)('float32', x, dims) });
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new KpruneError('runtime', `onnxruntime failed to run the model: ${why}`, { file, cause: e });
  }
  const out = new Map<string, { dims: number[]; type: string }>([[input, { dims, type: 'float32' }]]);
  for (const [name, v] of Object.entries(r)) {
    const t = v as ort.Tensor;
    out.set(name, { dims: [...t.dims], type: t.type });
  }
  return out;
}
