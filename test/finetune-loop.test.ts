/**
 * The format-neutral fine-tuning loop with a scripted trainer: the best checkpoint by held-out score
 * (ties broken by loss) is returned, the starting weights when nothing beats them; batches and
 * learning rates are reproducible; an abort rejects with the signal's reason and returns nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Evaluation, Trainer, runLoop } from '../src/core/finetune/loop.js';
import { BatchSampler, learningRate } from '../src/core/finetune/schedule.js';
import { crossEntropy, distillKl, scoreOutputs } from '../src/core/finetune/score.js';

/** A trainer whose weights are one number, the step count; the evaluator scores from a table. */
function scripted(scores: number[], losses: number[] = scores.map(() => 1)) {
  let w = 0;
  const seen: { indices: number[]; lr: number }[] = [];
  const trainer: Trainer = {
    async step(indices, lr) {
      seen.push({ indices: [...indices], lr });
      w++;
      return 1 / w;
    },
    snapshot: () => new Map([['w', Float32Array.of(w)]]),
  };
  const evaluator = {
    async evaluate(weights: Map<string, Float32Array>): Promise<Evaluation<null>> {
      const step = weights.get('w')![0];
      return { score: scores[step], loss: losses[step], figures: null };
    },
  };
  return { trainer, evaluator, seen };
}

const base = { lr: 0.1, batch: 4, seed: 3, schedule: 'cosine' as const, trainCount: 10 };

test('the best held-out checkpoint is returned, with when it was taken', async () => {
  const scores = [0.5, 0.6, 0.7, 0.9, 0.8, 0.85, 0.6];
  const { trainer, evaluator } = scripted(scores);
  const r = await runLoop(trainer, evaluator, new Map([['w', Float32Array.of(0)]]), { ...base, steps: 6, evalEvery: 1 });
  assert.equal(r.bestStep, 3);
  assert.equal(r.weights.get('w')![0], 3);
  assert.equal(r.before.score, 0.5);
  assert.equal(r.after.score, 0.9);
  assert.deepEqual(r.history.map((h) => h.step), [0, 1, 2, 3, 4, 5, 6]);
});

test('when no checkpoint beats the start, the starting weights come back; ties go to the lower loss', async () => {
  const start = new Map([['w', Float32Array.of(0)]]);
  const worse = scripted([0.9, 0.5, 0.8]);
  const r = await runLoop(worse.trainer, worse.evaluator, start, { ...base, steps: 2, evalEvery: 1 });
  assert.equal(r.bestStep, 0);
  assert.equal(r.weights, start);
  const tie = scripted([0.9, 0.9, 0.9], [0.5, 0.4, 0.45]);
  const t = await runLoop(tie.trainer, tie.evaluator, start, { ...base, steps: 2, evalEvery: 1 });
  assert.equal(t.bestStep, 1);
});

test('by default the held-out loss chooses; select: score lets accuracy or agreement choose', async () => {
  const start = new Map([['w', Float32Array.of(0)]]);
  const byLoss = scripted([0.9, 0.8, 0.85], [0.5, 0.4, 0.45]);
  assert.equal((await runLoop(byLoss.trainer, byLoss.evaluator, start, { ...base, steps: 2, evalEvery: 1 })).bestStep, 1);
  const byScore = scripted([0.9, 0.8, 0.85], [0.5, 0.4, 0.45]);
  assert.equal((await runLoop(byScore.trainer, byScore.evaluator, start, { ...base, steps: 2, evalEvery: 1, select: 'score' })).bestStep, 0);
});

test('evaluations happen every evalEvery steps and after the last', async () => {
  const { trainer, evaluator } = scripted(new Array(8).fill(0.5));
  const r = await runLoop(trainer, evaluator, new Map([['w', Float32Array.of(0)]]), { ...base, steps: 7, evalEvery: 3 });
  assert.deepEqual(r.history.map((h) => h.step), [0, 3, 6, 7]);
});

test('batches and learning rates depend on the seed only', async () => {
  const a = scripted(new Array(20).fill(0));
  const b = scripted(new Array(20).fill(0));
  const c = scripted(new Array(20).fill(0));
  await runLoop(a.trainer, a.evaluator, new Map([['w', Float32Array.of(0)]]), { ...base, steps: 12, evalEvery: 100 });
  await runLoop(b.trainer, b.evaluator, new Map([['w', Float32Array.of(0)]]), { ...base, steps: 12, evalEvery: 100 });
  await runLoop(c.trainer, c.evaluator, new Map([['w', Float32Array.of(0)]]), { ...base, seed: 4, steps: 12, evalEvery: 100 });
  assert.deepEqual(a.seen, b.seen);
  assert.notDeepEqual(a.seen.map((s) => s.indices), c.seen.map((s) => s.indices));
});

test('the sampler visits every sample once per epoch, in batches that never span two epochs', () => {
  const s = new BatchSampler(10, 4, 7);
  const epoch1 = [...s.next(), ...s.next()];
  const epoch2 = [...s.next(), ...s.next()];
  assert.equal(new Set(epoch1).size, 8);
  assert.equal(new Set(epoch2).size, 8);
  assert.notDeepEqual(epoch1, epoch2);
  const tiny = new BatchSampler(3, 64, 1);
  assert.equal(tiny.size, 3);
  assert.deepEqual([...tiny.next()].sort(), [0, 1, 2]);
});

test('learning rate: linear warm-up, then cosine to zero (or constant)', () => {
  const steps = 200;
  assert.ok(learningRate('cosine', 1, 1, steps) < learningRate('cosine', 1, 5, steps));
  assert.ok(Math.abs(learningRate('cosine', 1, 11, steps) - 1) < 1e-9);
  assert.ok(learningRate('cosine', 1, steps, steps) < 1e-3);
  assert.equal(learningRate('constant', 0.5, 150, steps), 0.5);
  for (let s = 12; s < steps; s++) assert.ok(learningRate('cosine', 1, s + 1, steps) <= learningRate('cosine', 1, s, steps));
});

test('an abort stops between steps and rejects with the signal\'s reason', async () => {
  const { trainer, evaluator, seen } = scripted(new Array(100).fill(0.5));
  const controller = new AbortController();
  const run = runLoop(trainer, evaluator, new Map([['w', Float32Array.of(0)]]), {
    ...base, steps: 50, evalEvery: 5, signal: controller.signal,
    onStep: (p) => { if (p.step === 3) controller.abort(new Error('interrupted')); },
  });
  await assert.rejects(run, /interrupted/);
  assert.equal(seen.length, 3);
});

test('progress reports step, loss, images per second, elapsed time and the ETA, on a clock the test drives', async (t) => {
  // A step takes 10 ms and an evaluation 30 ms of a fake clock: the figures are exact, whatever the
  // load of the machine (real microsecond steps made the ETAs compare noise).
  let now = 1000;
  t.mock.method(performance, 'now', () => now);
  const { trainer: inner, evaluator: innerEval } = scripted(new Array(10).fill(0.5));
  const trainer: Trainer = { step: async (i, lr) => { now += 10; return inner.step(i, lr); }, snapshot: inner.snapshot };
  const evaluator = { evaluate: async (w: ReadonlyMap<string, Float32Array>) => { now += 30; return innerEval.evaluate(w as Map<string, Float32Array>); } };
  const events: { step: number; eta: number; ips: number; elapsed: number }[] = [];
  const r = await runLoop(trainer, evaluator, new Map([['w', Float32Array.of(0)]]), {
    ...base, steps: 5, evalEvery: 2, onStep: (p) => events.push({ step: p.step, eta: p.etaMs, ips: p.imagesPerSecond, elapsed: p.elapsedMs }),
  });
  // Evaluations at the start and after steps 2, 4 and 5. ETA = 10 ms per step left + 30 ms per
  // evaluation left (the evaluation of this step included): 4*10 + 3*30, 3*10 + 2*30, ...
  assert.deepEqual(events.map((e) => e.step), [1, 2, 3, 4, 5]);
  assert.deepEqual(events.map((e) => e.eta), [130, 90, 80, 40, 30]);
  assert.deepEqual(events.map((e) => e.elapsed), [10, 20, 60, 70, 110]);
  assert.deepEqual(events.map((e) => e.ips), [400, 400, 400, 400, 400], '4 images per 10 ms');
  assert.equal(r.trainMs, 50);
  assert.equal(r.evalMs, 4 * 30);
  assert.equal(r.imagesPerSecond, 400);
});

test('a loss that is not finite stops the run with a clear error', async () => {
  const trainer: Trainer = { step: async () => NaN, snapshot: () => new Map() };
  const evaluator = { evaluate: async (): Promise<Evaluation<null>> => ({ score: 0, loss: 0, figures: null }) };
  await assert.rejects(runLoop(trainer, evaluator, new Map(), { ...base, steps: 3, evalEvery: 1 }), /loss became NaN at step 1/);
});

test('held-out scores: accuracy with cross-entropy, agreement with distillation, distance otherwise', () => {
  const out = { data: Float32Array.of(2, 0, 0, 3, 1, 0), sampleDims: [3] };
  const orig = { data: Float32Array.of(3, 0, 0, 0, 2, 0), sampleDims: [3] };
  const labels = Int32Array.of(0, 1);
  const ce = scoreOutputs(out, orig, labels, 'cross-entropy', 4);
  assert.equal(ce.score, 0.5);
  assert.ok(Math.abs(ce.loss - crossEntropy(out, labels)) < 1e-12);
  const kd = scoreOutputs(out, orig, undefined, 'distill-kl', 4);
  assert.equal(kd.score, 0.5);
  assert.ok(kd.loss > 0 && Math.abs(distillKl(orig, orig, 4)) < 1e-12);
  const mse = scoreOutputs({ data: Float32Array.of(1, 2, 3, 4), sampleDims: [2, 2] }, { data: Float32Array.of(1, 2, 3, 6), sampleDims: [2, 2] }, undefined, 'distill-mse', 4);
  assert.equal(mse.loss, 1);
  assert.equal(mse.score, -1);
});
