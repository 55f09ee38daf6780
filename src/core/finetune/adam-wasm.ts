/**
 * Adam over float32 arrays in WebAssembly SIMD (adam.wat, compiled into adam-wasm-bytes.ts): four
 * lanes at a time, every operation in float32, the same values as the JS loop of optimizer.ts
 * (which rounds after each operation too; a test checks them bit for bit).
 *
 * Why: in JS the update is bound by a float64 division and square root per weight: 22-33 ms a step
 * for a ResNet-18's 6.1 M kept weights, a quarter of a training step at two threads; here 4 ms, plus
 * the gradient's copy into this memory (1.7-4 ms). The weights, moments and a gradient buffer of
 * every slot live in one WebAssembly memory, allocated once (its size never changes, so views over
 * it stay valid): the weights are fed to onnxruntime as views of it, with no copy.
 */
import { ADAM_WASM_BASE64 } from './adam-wasm-bytes.js';

export interface AdamConstants {
  b1: number;
  b2: number;
  a1: number;
  a2: number;
  /** lr / (1 - b1^t) */
  step: number;
  /** 1 / sqrt(1 - b2^t) */
  root: number;
  eps: number;
}

type AdamKernel = (w: number, g: number, m: number, v: number, n: number, b1: number, b2: number, a1: number, a2: number, step: number, root: number, eps: number) => void;

let compiled: WebAssembly.Module | null | undefined;

/** The compiled kernel, or null where this runtime has no WebAssembly SIMD. */
function kernelModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(Buffer.from(ADAM_WASM_BASE64, 'base64'));
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

const PAGE = 65536;
/** wasm32 addresses 4 GiB; beyond that (a very large model) the JS loop serves. */
const MAX_BYTES = 2 ** 32 - PAGE;

/** Per slot four float32 arrays of its length, 16-byte aligned: the weights, the gradient, m and v. */
export class AdamArena {
  private constructor(
    private readonly adam: AdamKernel,
    private readonly buffer: ArrayBuffer,
    private readonly offsets: number[],
    private readonly lengths: number[],
  ) {}

  /** An arena for slots of these lengths, or null (no WebAssembly SIMD here, or too large). */
  static open(lengths: number[]): AdamArena | null {
    const module = kernelModule();
    if (!module) return null;
    const offsets: number[] = [];
    let bytes = 0;
    for (const n of lengths) {
      offsets.push(bytes);
      bytes += 4 * Math.ceil((4 * n) / 16) * 16;
    }
    if (bytes > MAX_BYTES) return null;
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(bytes / PAGE)) });
    } catch {
      return null;
    }
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    return new AdamArena(instance.exports.adam as AdamKernel, memory.buffer, offsets, lengths);
  }

  private at(slot: number, which: number): number {
    return this.offsets[slot] + which * Math.ceil((4 * this.lengths[slot]) / 16) * 16;
  }

  /** Slot `slot`'s weights (0), gradient (1), first (2) or second moment (3), as a view of the arena. */
  array(slot: number, which: 0 | 1 | 2 | 3): Float32Array {
    return new Float32Array(this.buffer, this.at(slot, which), this.lengths[slot]);
  }

  /** One Adam update of slot `slot` from the gradient in its gradient array. */
  step(slot: number, c: AdamConstants): void {
    this.adam(this.at(slot, 0), this.at(slot, 1), this.at(slot, 2), this.at(slot, 3), this.lengths[slot], c.b1, c.b2, c.a1, c.a2, c.step, c.root, c.eps);
  }
}
