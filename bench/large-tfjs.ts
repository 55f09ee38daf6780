/**
 * A large TF.js LayersModel for bench/large.ts, generated at bench time (never committed): a
 * Sequential of `layers` Conv2D 3x3 (channels -> channels, padding same, ReLU) on a tiny
 * [null, spatial, spatial, channels] input, then GlobalAveragePooling2D. Kernels in TF.js's HWIO
 * layout [3, 3, in, out] plus biases, float32, as the TF.js converter saves them: one weight group cut
 * into 4 MiB shards (`group1-shardKofN.bin`, tensors running across shard boundaries). Defaults: 100
 * layers of 512 channels, 944 MB in 226 shards.
 *
 * model.json has the shape tf.LayersModel.save writes (checked against TF.js 4.22: class_name /
 * config per layer, batch_input_shape on the first, weight names `<layer>/kernel`, `<layer>/bias`).
 * The shards are streamed one tensor at a time (made, written across shards, dropped), seeded as
 * bench/vgg16.ts seeds its weights.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { GeneratedModel, TensorPlan, makeTensorBytes, tensorBytes, writeAll, describeGenerated } from './vgg16.js';

export interface LargeTfjsOptions {
  /** Conv2D 3x3 layers (default 100). */
  layers?: number;
  /** Channels of every layer (default 512: 9.4 MB of float32 per kernel). */
  channels?: number;
  /** Input height and width (default 4). */
  spatial?: number;
  /** Shard size in bytes (default 4 MiB, the TF.js converter's default). */
  shardBytes?: number;
  seed?: number;
}

export const LARGE_TFJS_DEFAULTS: Required<LargeTfjsOptions> = { layers: 100, channels: 512, spatial: 4, shardBytes: 4 * 1024 * 1024, seed: 4096 };

/** Writes bytes across fixed-size shard files, opening the next shard when one is full. */
class ShardWriter {
  private handle: fs.FileHandle | null = null;
  private index = 0;
  private inShard = 0;
  readonly paths: string[];

  constructor(private readonly dir: string, private readonly shardBytes: number, total: number) {
    const count = Math.max(1, Math.ceil(total / shardBytes));
    this.paths = Array.from({ length: count }, (_, k) => `group1-shard${k + 1}of${count}.bin`);
  }

  async write(data: Uint8Array): Promise<void> {
    for (let at = 0; at < data.length;) {
      if (!this.handle || this.inShard === this.shardBytes) {
        await this.handle?.close();
        if (this.index >= this.paths.length) throw new Error('internal: more bytes than the shards planned');
        this.handle = await fs.open(path.join(this.dir, this.paths[this.index++]), 'w');
        this.inShard = 0;
      }
      const n = Math.min(data.length - at, this.shardBytes - this.inShard);
      await writeAll(this.handle, data.subarray(at, at + n));
      at += n;
      this.inShard += n;
    }
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = null;
  }
}

/** Writes `model.json` and its shards into `dir` (created if needed). */
export async function writeLargeTfjsModel(dir: string, options: LargeTfjsOptions = {}): Promise<GeneratedModel> {
  const o = { ...LARGE_TFJS_DEFAULTS, ...options };
  await fs.mkdir(dir, { recursive: true });
  const c = o.channels;
  const layers: unknown[] = [];
  const tensors: TensorPlan[] = [];
  for (let i = 1; i <= o.layers; i++) {
    const name = `conv${i}`;
    layers.push({
      class_name: 'Conv2D',
      config: {
        filters: c,
        kernel_initializer: { class_name: 'VarianceScaling', config: { scale: 1, mode: 'fan_avg', distribution: 'normal', seed: null } },
        kernel_regularizer: null,
        kernel_constraint: null,
        kernel_size: [3, 3],
        strides: [1, 1],
        padding: 'same',
        data_format: 'channels_last',
        dilation_rate: [1, 1],
        activation: 'relu',
        use_bias: true,
        bias_initializer: { class_name: 'Zeros', config: {} },
        bias_regularizer: null,
        activity_regularizer: null,
        bias_constraint: null,
        name,
        trainable: true,
        ...(i === 1 ? { batch_input_shape: [null, o.spatial, o.spatial, c], dtype: 'float32' } : {}),
      },
    });
    tensors.push({ name: `${name}/kernel`, dims: [3, 3, c, c], bound: Math.sqrt(6 / (c * 9)), kernel3x3: true, tapStride: c * c, seed: o.seed * 1000 + i * 2 });
    tensors.push({ name: `${name}/bias`, dims: [c], bound: 0.01, kernel3x3: false, seed: o.seed * 1000 + i * 2 + 1 });
  }
  layers.push({ class_name: 'GlobalAveragePooling2D', config: { data_format: 'channels_last', name: 'gap', trainable: true } });

  const weightBytes = tensors.reduce((a, t) => a + tensorBytes(t), 0);
  const shards = new ShardWriter(dir, o.shardBytes, weightBytes);
  try {
    for (const t of tensors) await shards.write(makeTensorBytes(t));
  } finally {
    await shards.close();
  }

  const doc = {
    format: 'layers-model',
    generatedBy: 'kprune bench (TensorFlow.js tfjs-layers 4.22.0 format)',
    convertedBy: null,
    modelTopology: {
      class_name: 'Sequential',
      config: { name: 'large-tfjs-bench', layers },
      keras_version: 'tfjs-layers 4.22.0',
      backend: 'tensor_flow.js',
    },
    weightsManifest: [{ paths: shards.paths, weights: tensors.map((t) => ({ name: t.name, shape: t.dims, dtype: 'float32' })) }],
  };
  const modelFile = path.join(dir, 'model.json');
  await fs.writeFile(modelFile, JSON.stringify(doc));
  const files = [modelFile, ...shards.paths.map((p) => path.join(dir, p))];
  return describeGenerated(files, tensors, o.layers);
}
