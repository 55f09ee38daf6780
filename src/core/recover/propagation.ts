/**
 * Where layer-wise reconstruction gets its data: for each 3x3 layer in turn, the layer's input as
 * the reshaped model (already reconstructed up to that layer) computes it, and rows of the
 * original model's output of that layer.
 *
 * Two sources behind one contract:
 * - `rerunSource`: runs the whole model from the input for every layer (twice: the reshaped model
 *   for inputs, the original for targets). Works for any model and runtime; costs depth squared.
 * - `SegmentedSource`: one pass of the original model gives every layer's target rows (sampled up
 *   front, so only those rows are kept); then the reshaped model advances layer by layer over
 *   cached activations, running only the segment of the graph between consecutive 3x3 layers.
 *   A full recovery costs two forward passes plus the solves. Needs a runtime that can run a
 *   segment of the graph from named values (`SegmentExecutor`).
 */
import { Conv3x3Layer, ConvUse } from '../../model/conv.js';
import type { ModelRunner } from '../../model/runner.js';
import { Activation, RowSampler, SampledRows, sampleRows } from './layer-stats.js';

/** One batch of one layer: per use, its input (reshaped model) and its target rows (original). */
export type LayerBatch = { use: ConvUse; x: Activation; target: SampledRows }[];

export interface LayerwiseSource {
  /**
   * Visits every calibration batch for `layer`, the reshaped model running with `weights` (the
   * layers before it reconstructed, the others masked). Layers must come in topological order.
   */
  layer(layer: Conv3x3Layer, weights: ReadonlyMap<string, Float32Array>, visit: (batch: LayerBatch) => Promise<void>): Promise<void>;
  /** The same batches of the layer `layer` last visited, again (the same rows, in the same order). */
  again(layer: Conv3x3Layer, weights: ReadonlyMap<string, Float32Array>, visit: (batch: LayerBatch) => Promise<void>): Promise<void>;
  /** What the source did and held, for the report. */
  info(): PropagationInfo;
  release(): Promise<void>;
}

export interface PropagationInfo {
  /** `segments`: cached activations, one segment per layer; `rerun`: the whole model per layer. */
  engine: 'segments' | 'rerun';
  /** Why the segment engine was not used, when it was not. */
  fallbackReason?: string;
  /** Images per chunk (one run of a segment). */
  chunk: number;
  /** Forward passes over the calibration images (a pass up to the last 3x3 layer counts as one). */
  passes: number;
  /** Segments: wall time of the one pass of the original model that sampled every layer's targets. */
  targetPassMs?: number;
  /** Segments: the most values held per image at a cut between layers, and their bytes. */
  maxLiveValues?: number;
  maxLiveBytesPerImage?: number;
  /** Segments: bytes of the sampled target rows of all layers, per image. */
  targetBytesPerImage?: number;
  /** Segments: the most bytes the cache held in memory at once, and what it wrote to disk. */
  peakCacheBytes?: number;
  spilledBytes?: number;
  /** The cache's memory budget in bytes (above it, chunks go to a temporary file). */
  memoryBudget?: number;
}

/**
 * Runs several weight sets on each calibration batch and hands over what each fetched. Weight sets
 * are never mutated after they are handed over, so a source may cache per set by identity.
 */
export interface ActivationSource {
  forEachBatch(runs: { weights: ReadonlyMap<string, Float32Array>; fetch: string[] }[], visit: (results: Map<string, Activation>[]) => Promise<void>): Promise<void>;
  /** Images per batch. */
  batch: number;
}

/** The whole model, twice per layer: the engine before segments, and the fallback. */
export function rerunSource(
  source: ActivationSource,
  original: ReadonlyMap<string, Float32Array>,
  samplerFor: (layer: Conv3x3Layer) => RowSampler,
  fallbackReason?: string,
): LayerwiseSource {
  let passes = 0;
  const layer: LayerwiseSource['layer'] = async (l, weights, visit) => {
    // A fresh sampler of the same seed: a second visit sees the same rows.
    const sampler = samplerFor(l);
    if (weights === original) {
      // The original model's own inputs and outputs (scoring shapes): one run gives both.
      passes += 1;
      await source.forEachBatch(
        [{ weights, fetch: l.uses.flatMap((u) => [u.input, u.output]) }],
        async ([orig]) => visit(l.uses.map((use) => ({ use, x: orig.get(use.input)!, target: sampleRows(orig.get(use.output)!, sampler) }))),
      );
      return;
    }
    passes += 2;
    await source.forEachBatch(
      [
        { weights, fetch: l.uses.map((u) => u.input) },
        { weights: original, fetch: l.uses.map((u) => u.output) },
      ],
      async ([cur, orig]) => visit(l.uses.map((use) => ({ use, x: cur.get(use.input)!, target: sampleRows(orig.get(use.output)!, sampler) }))),
    );
  };
  return {
    layer,
    again: layer,
    info: () => ({ engine: 'rerun', chunk: source.batch, passes, ...(fallbackReason ? { fallbackReason } : {}) }),
    release: async () => undefined,
  };
}

// --- Segments ---------------------------------------------------------------------------------

/** A tensor of any element type, as a runtime hands it over (type names as onnxruntime's). */
export interface CachedValue {
  type: string;
  dims: number[];
  data: Float32Array | Float64Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;
}

export function valueBytes(v: CachedValue): number {
  return v.data.byteLength;
}

/** The computing part of a model's graph, as the segment planner sees it. */
export interface DataflowGraph {
  /** The data input's value name. */
  input: string;
  /** In topological order; constants (initializers, constant nodes) are not listed as inputs. */
  nodes: { inputs: string[]; outputs: string[] }[];
}

/** Nodes [from, to) of the graph, reading `reads` from the cache and leaving `writes` in it. */
export interface Segment {
  from: number;
  to: number;
  reads: string[];
  writes: string[];
  /** Values live after the segment (in the cache): what later segments or the layer read. */
  live: string[];
}

/** Runs segments of one model's graph on cached values. */
export interface SegmentExecutor {
  /** Runs `segment` on one chunk with the given 3x3 weights; returns its `writes`. */
  run(segment: Segment, weights: ReadonlyMap<string, Float32Array>, feeds: Map<string, CachedValue>): Promise<Map<string, CachedValue>>;
  /** The convolution input `name` as float32 NCHW (the core's convention). */
  activation(v: CachedValue, name: string): Activation;
  /** Called when a segment has run on every chunk: its session can go. */
  done(segment: Segment): Promise<void>;
  release(): Promise<void>;
}

/** Holds each chunk's cached values between layers (in memory, or spilled past a budget). */
export interface ChunkStore {
  put(chunk: number, values: Map<string, CachedValue>): Promise<void>;
  take(chunk: number): Promise<Map<string, CachedValue>>;
  stats(): { peakBytes: number; spilledBytes: number; budget: number };
  release(): Promise<void>;
}

/**
 * Cuts the graph before each layer's convolution node: segment k runs nodes [cut(k-1), cut(k))
 * (the first from the input), so it includes layer k-1's convolution, with its weights as
 * reconstructed by then. What stays cached after a cut is every value produced before it that a
 * node at or after it reads (up to the last cut: nothing after it is ever run).
 */
export function planSegments(graph: DataflowGraph, cuts: number[]): Segment[] {
  const last = cuts[cuts.length - 1];
  const lastUse = new Map<string, number>();
  graph.nodes.forEach((n, i) => {
    if (i > last) return;
    for (const v of n.inputs) lastUse.set(v, Math.max(lastUse.get(v) ?? -1, i));
  });
  const segments: Segment[] = [];
  let live = new Set([graph.input]);
  let from = 0;
  for (const to of cuts) {
    const produced = new Set<string>();
    const reads = new Set<string>();
    for (let i = from; i < to; i++) {
      for (const v of graph.nodes[i].inputs) if (!produced.has(v)) reads.add(v);
      for (const v of graph.nodes[i].outputs) produced.add(v);
    }
    for (const v of reads) if (!live.has(v)) throw new Error(`value "${v}" is read before it is computed (the graph is not in topological order)`);
    const alive = (v: string) => (lastUse.get(v) ?? -1) >= to;
    const writes = [...produced].filter(alive);
    live = new Set([...[...live].filter(alive), ...writes]);
    segments.push({ from, to, reads: [...reads], writes, live: [...live] });
    from = to;
  }
  return segments;
}

const TARGET = '\u0000target:';

export interface SegmentedOptions {
  /** The calibration images, in the model's input layout, `count` samples of `sampleDims`. */
  x: Float32Array;
  count: number;
  sampleDims: number[];
  chunk: number;
  /** The original model, able to fetch every layer's output. */
  original: ModelRunner;
  samplerFor: (layer: Conv3x3Layer) => RowSampler;
}

/** See the top of this file. Build with `SegmentedSource.open`. */
export class SegmentedSource implements LayerwiseSource {
  private next = 0;
  private maxLiveValues = 0;
  private maxLiveBytes = 0;
  private targetBytes = 0;
  private targetMs = 0;
  private readonly chunks: number;
  private readonly meta = new Map<string, { outChannels: number; outDims: [number, number] }>();

  private constructor(
    private readonly layers: Conv3x3Layer[],
    private readonly segments: Segment[],
    private readonly executor: SegmentExecutor,
    private readonly store: ChunkStore,
    private readonly options: SegmentedOptions,
  ) {
    this.chunks = Math.ceil(options.count / options.chunk);
  }

  /**
   * Plans the segments and makes the one pass of the original model (targets, sampled). `layers`
   * in topological order, each with one use; `cuts[k]` the position of layer k's node.
   */
  static async open(layers: Conv3x3Layer[], graph: DataflowGraph, cuts: number[], executor: SegmentExecutor, store: ChunkStore, options: SegmentedOptions): Promise<SegmentedSource> {
    const source = new SegmentedSource(layers, planSegments(graph, cuts), executor, store, options);
    const t0 = performance.now();
    await source.targets(graph.input);
    source.targetMs = performance.now() - t0;
    return source;
  }

  private async targets(input: string): Promise<void> {
    const { x, count, sampleDims, chunk, original } = this.options;
    const per = sampleDims.reduce((a, b) => a * b, 1);
    const samplers = this.layers.map((l) => this.options.samplerFor(l));
    const fetch = this.layers.map((l) => l.uses[0].output);
    for (let c = 0; c < this.chunks; c++) {
      const start = c * chunk;
      const n = Math.min(chunk, count - start);
      const data = x.subarray(start * per, (start + n) * per);
      const outs = await original.run(data, [n, ...sampleDims], fetch);
      const values = new Map<string, CachedValue>([[input, { type: 'float32', dims: [n, ...sampleDims], data }]]);
      this.layers.forEach((l, k) => {
        const t = sampleRows(outs.get(fetch[k])!, samplers[k]);
        this.meta.set(l.id, { outChannels: t.outChannels, outDims: t.outDims });
        values.set(`${TARGET}${l.id}:o`, { type: 'int32', dims: [t.offsets.length], data: t.offsets });
        values.set(`${TARGET}${l.id}:p`, { type: 'int32', dims: [t.positions.length], data: t.positions });
        values.set(`${TARGET}${l.id}:v`, { type: 'float32', dims: [t.values.length], data: t.values });
        if (c === 0) this.targetBytes += (t.positions.byteLength + t.values.byteLength + t.offsets.byteLength) / n;
      });
      await this.store.put(c, values);
    }
  }

  async layer(layer: Conv3x3Layer, weights: ReadonlyMap<string, Float32Array>, visit: (batch: LayerBatch) => Promise<void>): Promise<void> {
    const k = this.next++;
    if (this.layers[k]?.id !== layer.id) throw new Error(`segmented source: expected layer ${this.layers[k]?.id}, got ${layer.id}`);
    const seg = this.segments[k];
    const use = layer.uses[0];
    const keep = new Set(seg.live);
    const meta = this.meta.get(layer.id)!;
    for (let c = 0; c < this.chunks; c++) {
      const values = await this.store.take(c);
      if (seg.writes.length > 0) {
        const feeds = new Map(seg.reads.map((v) => [v, values.get(v)!]));
        const out = await this.executor.run(seg, weights, feeds);
        for (const v of seg.writes) values.set(v, out.get(v)!);
      }
      for (const name of [...values.keys()]) if (!name.startsWith(TARGET) && !keep.has(name)) values.delete(name);
      // The previous layer's targets go now (kept until here for a second visit of that layer).
      if (k > 0) for (const part of ['o', 'p', 'v']) values.delete(`${TARGET}${this.layers[k - 1].id}:${part}`);
      const target = this.target(values, layer.id, meta);
      if (c === 0) {
        let bytes = 0;
        for (const v of seg.live) bytes += valueBytes(values.get(v)!) / (target.offsets.length - 1);
        this.maxLiveValues = Math.max(this.maxLiveValues, seg.live.length);
        this.maxLiveBytes = Math.max(this.maxLiveBytes, bytes);
      }
      await visit([{ use, x: this.executor.activation(values.get(use.input)!, use.input), target }]);
      await this.store.put(c, values);
    }
    await this.executor.done(seg);
  }

  async again(layer: Conv3x3Layer, _weights: ReadonlyMap<string, Float32Array>, visit: (batch: LayerBatch) => Promise<void>): Promise<void> {
    if (this.layers[this.next - 1]?.id !== layer.id) throw new Error(`segmented source: ${layer.id} is not the layer last visited`);
    const use = layer.uses[0];
    const meta = this.meta.get(layer.id)!;
    for (let c = 0; c < this.chunks; c++) {
      const values = await this.store.take(c);
      await visit([{ use, x: this.executor.activation(values.get(use.input)!, use.input), target: this.target(values, layer.id, meta) }]);
      await this.store.put(c, values);
    }
  }

  private target(values: Map<string, CachedValue>, id: string, meta: { outChannels: number; outDims: [number, number] }): SampledRows {
    const part = (s: string) => values.get(`${TARGET}${id}:${s}`)!.data;
    return { ...meta, offsets: part('o') as Int32Array, positions: part('p') as Int32Array, values: part('v') as Float32Array };
  }

  info(): PropagationInfo {
    const s = this.store.stats();
    return {
      engine: 'segments',
      chunk: this.options.chunk,
      // One pass of the original (targets), one of the reshaped model up to the last layer.
      passes: 2,
      targetPassMs: Math.round(this.targetMs),
      maxLiveValues: this.maxLiveValues,
      maxLiveBytesPerImage: Math.round(this.maxLiveBytes),
      targetBytesPerImage: Math.round(this.targetBytes),
      peakCacheBytes: s.peakBytes,
      spilledBytes: s.spilledBytes,
      memoryBudget: s.budget,
    };
  }

  async release(): Promise<void> {
    await this.executor.release();
    await this.store.release();
  }
}

/** Why a model's layers cannot be reconstructed segment by segment (null: they can). */
export function segmentObstacle(layers: Conv3x3Layer[], cuts: (number | undefined)[]): string | null {
  for (const [k, l] of layers.entries()) {
    if (l.uses.length !== 1) return `weight ${l.id} is used by ${l.uses.length} convolutions`;
    if (cuts[k] === undefined) return `the node of ${l.name} is not in the graph's computing part`;
    if (k > 0 && cuts[k]! <= cuts[k - 1]!) return `3x3 layers ${layers[k - 1].name} and ${l.name} are out of topological order`;
  }
  return null;
}
