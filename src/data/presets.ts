/** Named preprocessing recipes, matching how the usual models of each family were trained. */
import type { Preprocess, PresetName } from './types.js';

export const PRESETS: Record<PresetName, Partial<Preprocess>> = {
  // torchvision's ImageNet evaluation: shorter side to 256 (bilinear, antialiased), centre crop
  // 224, its normalisation.
  imagenet: {
    height: 224, width: 224, channels: 3, scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225],
    resize: 'shorter', crop: 224 / 256, interpolation: 'bilinear',
  },
  // The fixture models (fixtures/generate/train_fixtures.py) see uint8 / 255 with no mean/std.
  'fashion-mnist': { height: 28, width: 28, channels: 1, scale: 1 / 255, mean: [0], std: [1] },
};
