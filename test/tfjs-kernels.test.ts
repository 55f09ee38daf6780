/**
 * TF's filter layouts and the core's: the tiled transposes (src/formats/tfjs/kernels.ts) against the
 * definition, element by element, at channel counts below, at and across the tile size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { depthwiseToOihw, hwioToOihw, oihwToDepthwise, oihwToHwio } from '../src/formats/tfjs/kernels.js';
import { randomFloats } from './helpers/onnx-builder.js';

test('HWIO <-> OIHW: every element where the definition puts it, and back', () => {
  for (const [inChannels, outChannels] of [[1, 1], [3, 5], [16, 7], [17, 33], [40, 2]]) {
    const hwio = randomFloats(9 * inChannels * outChannels, inChannels * 100 + outChannels);
    const oihw = hwioToOihw(hwio, inChannels, outChannels);
    for (let p = 0; p < 9; p++) {
      for (let i = 0; i < inChannels; i++) {
        for (let o = 0; o < outChannels; o++) {
          assert.equal(oihw[(o * inChannels + i) * 9 + p], hwio[(p * inChannels + i) * outChannels + o], `[${inChannels}, ${outChannels}] p ${p} i ${i} o ${o}`);
        }
      }
    }
    assert.deepEqual(oihwToHwio(oihw, inChannels, outChannels), hwio);
  }
});

test('depthwise [3][3][C][M] <-> OIHW: output channel c * M + m', () => {
  const [channels, multiplier] = [19, 2];
  const w = randomFloats(9 * channels * multiplier, 5);
  const oihw = depthwiseToOihw(w, channels, multiplier);
  for (let p = 0; p < 9; p++) {
    for (let c = 0; c < channels; c++) {
      for (let m = 0; m < multiplier; m++) assert.equal(oihw[(c * multiplier + m) * 9 + p], w[(p * channels + c) * multiplier + m]);
    }
  }
  assert.deepEqual(oihwToDepthwise(oihw, channels, multiplier), w);
});
