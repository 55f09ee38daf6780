/**
 * The training step both fine-tuners share (runtime/onnx-tfjs/trainer.ts): after every optimiser
 * step the masks are applied once more, so pruned positions are exactly zero whatever the optimiser
 * or the starting point; kept positions move. Starting weights that are not zero outside the mask
 * (which the pipeline refuses earlier) show the re-application on its own: masked gradients alone
 * would leave them where they were.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as TF from '../src/runtime/tfjs/tf.js';
import { TfjsTrainer } from '../src/runtime/tfjs/trainer.js';
import type { Dataset } from '../src/data/types.js';
import { randomFloats } from './helpers/onnx-builder.js';
import { tfjs } from './helpers/tfjs-models.js';

const CROSS = 0b010_111_010; // bits 1, 3, 4, 5, 7
const KEPT = [1, 3, 4, 5, 7];

for (const optimizer of ['sgd', 'adam'] as const) {
  test(`${optimizer}: pruned positions are exactly zero after each step, even starting from non-zero values; kept ones train`, async () => {
    const tf = await tfjs();
    const w = tf.variable(tf.tensor(Float32Array.from({ length: 9 * 2 * 3 }, (_, i) => 0.5 + 0.01 * i), [3, 3, 2, 3]));
    try {
      const train: Dataset = {
        source: 'test', count: 8, sampleDims: [5, 4, 2], layout: 'NHWC', x: randomFloats(8 * 5 * 4 * 2, 3), channelMean: [0, 0],
      };
      const trainer = new TfjsTrainer({
        tf,
        forward: (x) => tf.conv2d(x as TF.Tensor4D, w as unknown as TF.Tensor4D, 1, 'same'),
        variables: new Map([['w', w]]),
        read: () => Float32Array.from(w.dataSync()),
        masks: new Map([['w', CROSS]]),
        train,
        objective: 'distill-mse',
        temperature: 1,
        distillWeight: 0,
        optimizer,
        momentum: 0,
        // Targets of zero: every weight has a gradient.
        teacher: async (_x, dims) => new Float32Array(dims[0] * 5 * 4 * 3),
      });
      const start = Float32Array.from(w.dataSync());
      for (let s = 0; s < 3; s++) {
        const loss = await trainer.step(Uint32Array.of(0, 1, 2, 3, 4, 5, 6, 7), 0.05);
        assert.ok(Number.isFinite(loss));
        const v = w.dataSync();
        // HWIO [3, 3, 2, 3]: position p holds 6 values.
        for (let i = 0; i < v.length; i++) {
          const p = Math.floor(i / 6);
          if (!KEPT.includes(p)) assert.equal(v[i], 0, `step ${s + 1}: pruned position ${p} [${i}] = ${v[i]}`);
        }
      }
      const v = w.dataSync();
      let moved = 0;
      for (let i = 0; i < v.length; i++) if (KEPT.includes(Math.floor(i / 6)) && v[i] !== start[i]) moved++;
      assert.equal(moved, 5 * 6, 'every kept weight trained');
      trainer.dispose();
    } finally {
      w.dispose();
    }
  });
}
