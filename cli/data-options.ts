/** Options for calibration/evaluation data, shared by `prune` and `compare`. */
import { Command, Option } from 'commander';
import { KpruneError } from '../src/index.js';
import type { DataOptions } from '../src/index.js';
import { parseInteger, parseList, parseNumber } from './parse.js';

export interface DataFlags {
  data?: string;
  calib?: number;
  eval?: number;
  seed?: number;
  preset?: 'imagenet' | 'fashion-mnist';
  size?: number[];
  channels?: number;
  dataLayout?: 'NCHW' | 'NHWC';
  scale?: number;
  mean?: number[];
  std?: number[];
  occlusion?: number;
  resize?: 'stretch' | 'shorter';
  crop?: number;
  interpolation?: 'bilinear' | 'nearest' | 'area';
  ridge?: number;
  recoverMemory?: number;
  compensate?: 'none' | 'pointwise' | 'linear' | 'auto';
  objective?: 'output' | 'relu';
}

export function addDataOptions(cmd: Command, calib: boolean): Command {
  cmd.option('--data <source>', 'calibration/evaluation data: fashion-mnist, a folder of images (class sub-folders = labels), an .npy/.npz, or an IDX images file');
  if (calib) cmd.option('--calib <n>', 'calibration samples (default 512)', parseInteger('--calib'));
  cmd
    .option('--eval <n>', 'evaluation samples (default 2000)', parseInteger('--eval'))
    .option('--seed <n>', 'seed for sampling and occlusion (default 0)', parseInteger('--seed'))
    .addOption(new Option('--preset <name>', 'preprocessing preset').choices(['imagenet', 'fashion-mnist']))
    .option('--size <h,w>', 'resize images to this size (default: the model input size)', parseList('--size'))
    .option('--channels <n>', 'image channels (1 or 3; default: the model input)', parseInteger('--channels'))
    .addOption(new Option('--data-layout <layout>', 'input layout of the data (default: from the model input)').choices(['NCHW', 'NHWC']))
    .option('--scale <s>', 'multiply 0..255 pixel values by s (default 1/255)', parseNumber('--scale'))
    .option('--mean <m,...>', 'per-channel mean subtracted after scaling', parseList('--mean'))
    .option('--std <s,...>', 'per-channel std divided after the mean', parseList('--std'))
    .addOption(new Option('--resize <mode>', 'how images reach the input size: stretch (each axis; default) or shorter (keep the aspect ratio, then centre crop); the imagenet preset: shorter').choices(['stretch', 'shorter']))
    .option('--crop <share>', 'centre crop keeping this share of the resized image, e.g. 0.875 = resize to 256 and crop 224 (default 1; imagenet preset 0.875)', parseNumber('--crop'))
    .addOption(new Option('--interpolation <filter>', 'resampling filter (default bilinear); downscaling is antialiased').choices(['bilinear', 'nearest', 'area']))
    .option('--occlusion <area>', 'share of the image the occlusion patch covers (default 0.25; 0 = off)', parseNumber('--occlusion'));
  if (calib) {
    cmd.option('--ridge <r>', 'ridge strength for reconstruction (default 1e-3)', parseNumber('--ridge'));
    cmd.option('--recover-memory <MiB>', 'memory for activations cached during reconstruction (default 2048); beyond it, a temporary file', parseInteger('--recover-memory'));
    cmd.addOption(new Option('--objective <what>', 'what reconstruction matches: relu (default: what survives the ReLU after a layer, where one follows) or output (the layer\'s output)').choices(['relu', 'output']));
    cmd.addOption(new Option('--compensate <layers>', 'also re-solve the linear layers after reshaped ones (ONNX; in TF.js LayersModels, 1x1 Conv2D layers): auto (default: after reshaped depthwise or grouped layers), linear (1x1 convolutions and dense layers after any), pointwise (1x1 only) or none').choices(['auto', 'none', 'pointwise', 'linear']));
  }
  return cmd;
}

export function dataOptions(o: DataFlags): DataOptions | undefined {
  if (!o.data) {
    for (const flag of ['calib', 'eval', 'preset', 'size', 'channels', 'dataLayout', 'scale', 'mean', 'std', 'resize', 'crop', 'interpolation', 'occlusion', 'ridge', 'recoverMemory', 'compensate', 'objective'] as const) {
      if (o[flag] !== undefined) throw new KpruneError('usage', `--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --data`);
    }
    return undefined;
  }
  const preprocess: NonNullable<DataOptions['preprocess']> = {};
  if (o.size) {
    if (o.size.length > 2) throw new KpruneError('usage', '--size takes H,W or one number');
    preprocess.height = o.size[0];
    preprocess.width = o.size[1] ?? o.size[0];
  }
  if (o.channels !== undefined) preprocess.channels = o.channels;
  if (o.dataLayout) preprocess.layout = o.dataLayout;
  if (o.scale !== undefined) preprocess.scale = o.scale;
  if (o.mean) preprocess.mean = o.mean;
  if (o.std) preprocess.std = o.std;
  if (o.resize) preprocess.resize = o.resize;
  if (o.crop !== undefined) preprocess.crop = o.crop;
  if (o.interpolation) preprocess.interpolation = o.interpolation;
  return {
    data: o.data, calib: o.calib, eval: o.eval, seed: o.seed, preset: o.preset, preprocess,
    occlusion: o.occlusion, ridge: o.ridge, recoverMemory: o.recoverMemory, compensate: o.compensate, objective: o.objective,
  };
}
