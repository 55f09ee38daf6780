/** Calibration and evaluation data: loaders, preprocessing and the seeded PRNG. */
export { loadData, BUILTIN_DATASETS } from './load.js';
export { PRESETS } from './presets.js';
export { mulberry32, permutation } from '../util/random.js';
export type { ChannelLayout, Dataset, DataSplit, LoadDataOptions, Preprocess, PresetName } from './types.js';
