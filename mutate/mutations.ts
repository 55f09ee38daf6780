/**
 * One-line mutations the test suite must catch (`npm run mutate`). Each is found by its exact text,
 * which must occur exactly once in its file: when the code moves, the runner stops with "mutation X:
 * text not found" instead of quietly testing nothing, and the entry is updated here.
 *
 * `tests` names the test files (test/<name>.test.ts) that catch it; they are part of `npm test`, so
 * a failure there fails the whole suite (`npm run mutate -- --full` checks that with the whole suite).
 * Every mutation must type-check: one the compiler refuses would be caught by the build, not a test.
 */
export interface Mutation {
  id: string;
  /** Path from the repository root. */
  file: string;
  original: string;
  replacement: string;
  /** The test files that catch it, without folder and `.test.ts`. */
  tests: string[];
  /** What goes wrong, for people. */
  why: string;
}

export const MUTATIONS: Mutation[] = [
  // --- the quality gate (pipeline/gate.ts, cli) ---
  {
    id: 'gate-top1-always-passes', file: 'src/pipeline/gate.ts',
    original: 'passed: drop <= maxDrop, reason: `top-1', replacement: 'passed: true, reason: `top-1',
    tests: ['report-figures', 'cli-gate'], why: 'the --max-drop top-1 gate always passes',
  },
  {
    id: 'gate-top1-strict', file: 'src/pipeline/gate.ts',
    original: 'passed: drop <= maxDrop, reason: `top-1', replacement: 'passed: drop < maxDrop, reason: `top-1',
    tests: ['report-figures'], why: 'a drop of exactly the allowed points fails',
  },
  {
    id: 'gate-agreement-always-passes', file: 'src/pipeline/gate.ts',
    original: 'passed: drop <= maxDrop, reason: `no labels', replacement: 'passed: true, reason: `no labels',
    tests: ['report-figures', 'cli-gate'], why: 'without labels the gate always passes',
  },
  {
    id: 'gate-agreement-drop-inverted', file: 'src/pipeline/gate.ts',
    original: 'const drop = points(1 - slimmed.agreement);', replacement: 'const drop = points(slimmed.agreement);',
    tests: ['report-figures', 'cli-gate'], why: 'agreement counted as the loss',
  },
  {
    id: 'gate-unmeasured-passes', file: 'src/pipeline/gate.ts',
    original: "passed: false, reason: 'accuracy was not measured", replacement: "passed: true, reason: 'accuracy was not measured",
    tests: ['report-figures', 'cli'], why: 'a gate without data passes',
  },
  {
    id: 'cli-gate-exit-code', file: 'cli/commands/prune.ts',
    original: 'process.exitCode = EXIT_GATE;', replacement: 'process.exitCode = EXIT_GATE - 1;',
    tests: ['cli-gate'], why: 'a failed gate exits 0',
  },
  // --- quality figures (report/metrics.ts) ---
  {
    id: 'top5-is-top6', file: 'src/core/metrics.ts',
    original: 'return higher < k;', replacement: 'return higher <= k;',
    tests: ['report-figures'], why: 'top-5 counts the top 6',
  },
  {
    id: 'top5-with-five-classes', file: 'src/core/metrics.ts',
    original: 'if (classes > 5) q.top5 = top5 / samples;', replacement: 'if (classes >= 5) q.top5 = top5 / samples;',
    tests: ['report-figures'], why: 'top-5 reported for five classes (where it says nothing)',
  },
  {
    id: 'top1-ignores-last-class', file: 'src/core/metrics.ts',
    original: 'if (argmax(out.data, s * classes, classes) === labels[s]) top1++;', replacement: 'if (argmax(out.data, s * classes, classes - 1) === labels[s]) top1++;',
    tests: ['report-figures'], why: 'top-1 off by one class',
  },
  {
    id: 'argmax-skips-second', file: 'src/core/metrics.ts',
    original: 'for (let i = 1; i < n; i++) if (a[start + i] > a[start + best]) best = i;', replacement: 'for (let i = 2; i < n; i++) if (a[start + i] > a[start + best]) best = i;',
    tests: ['report-figures'], why: 'argmax off by one',
  },
  {
    id: 'agreement-inverted', file: 'src/core/metrics.ts',
    original: '=== argmax(original.data, s * classes, classes)) agree++;', replacement: '!== argmax(original.data, s * classes, classes)) agree++;',
    tests: ['report-figures', 'tfjs-recover'], why: 'agreement counts disagreements',
  },
  {
    id: 'mse-per-sample', file: 'src/core/metrics.ts',
    original: 'q.mse = se / out.data.length;', replacement: 'q.mse = se / samples;',
    tests: ['report-figures', 'tfjs-recover'], why: 'MSE divided by samples, not values',
  },
  {
    id: 'cosine-no-sqrt', file: 'src/core/metrics.ts',
    original: 'dot / Math.sqrt(na * nb)', replacement: 'dot / (na * nb)',
    tests: ['report-figures'], why: 'cosine without the square root',
  },
  {
    id: 'psnr-max-not-range', file: 'src/core/metrics.ts',
    original: 'const range = hi - lo;', replacement: 'const range = hi;',
    tests: ['report-figures'], why: 'PSNR from the maximum instead of the range',
  },
  // --- reshaping and measuring (core/reshape.ts, report/measure.ts, formats/onnx/inventory.ts) ---
  {
    id: 'energy-kept-inverted', file: 'src/core/reshape.ts',
    original: 'energyKept: before > 0 ? kept / before : 1,', replacement: 'energyKept: before > 0 ? 1 - kept / before : 1,',
    tests: ['report-figures'], why: 'per-layer energy kept is the energy dropped',
  },
  {
    id: 'energy-not-squared', file: 'src/core/reshape.ts',
    original: 'const before = energyKeptBy(sums.sq, FULL_MASK);\n    const kept = energyKeptBy(sums.sq, mask);', replacement: 'const before = energyKeptBy(sums.abs, FULL_MASK);\n    const kept = energyKeptBy(sums.abs, mask);',
    tests: ['report-figures'], why: 'energy as the sum of magnitudes',
  },
  {
    id: 'mask-inverted', file: 'src/core/reshape.ts',
    original: 'if (maskHas(mask, p)) continue;', replacement: 'if (!maskHas(mask, p)) continue;',
    tests: ['report-figures', 'onnx-roundtrip'], why: 'the kept positions are zeroed instead of the dropped ones',
  },
  {
    id: 'macs-effective-dense', file: 'src/report/measure.ts',
    original: 'Math.round((dense * w.nonzero) / w.elements)', replacement: 'Math.round((dense * w.elements) / w.elements)',
    tests: ['report-figures', 'cli'], why: 'effective MACs ignore zero weights',
  },
  {
    id: 'params-nonzero-all', file: 'src/report/measure.ts',
    original: 'p.conv3x3Nonzero += w.nonzero;', replacement: 'p.conv3x3Nonzero += w.elements;',
    tests: ['report-figures', 'cli'], why: 'non-zero 3x3 parameters count zeros too',
  },
  {
    id: 'gzip-level', file: 'src/report/measure.ts',
    original: 'export const GZIP_LEVEL = 6;', replacement: 'export const GZIP_LEVEL = 9;',
    tests: ['report-figures'], why: 'gzip sizes at another level than the README states',
  },
  {
    id: 'gemm-transb-macs', file: 'src/formats/onnx/inventory.ts',
    original: 'macsPerOutput: transB ? dims[1] : dims[0]', replacement: 'macsPerOutput: transB ? dims[0] : dims[1]',
    tests: ['report-figures'], why: 'Gemm MACs per output from the wrong dimension',
  },
  // --- wasm gradient kernels (runtime/wasm-conv-grads.ts) ---
  {
    id: 'wasm-left-pad-is-top', file: 'src/runtime/tfjs/wasm-conv-grads.ts',
    original: 'kw * c.dilationWidth - c.padInfo.left', replacement: 'kw * c.dilationWidth - c.padInfo.top',
    tests: ['wasm-conv-grads'], why: 'the gradient kernels use the top pad for the left pad',
  },
  {
    id: 'wasm-width-stride-is-height', file: 'src/runtime/tfjs/wasm-conv-grads.ts',
    original: 'ow * c.strideWidth', replacement: 'ow * c.strideHeight',
    tests: ['wasm-conv-grads'], why: 'the horizontal stride taken from the vertical one',
  },
  {
    id: 'wasm-width-bound-is-height', file: 'src/runtime/tfjs/wasm-conv-grads.ts',
    original: 'if (iw < 0 || iw >= c.inWidth) continue;', replacement: 'if (iw < 0 || iw >= c.inHeight) continue;',
    tests: ['wasm-conv-grads'], why: 'columns bounded by the height',
  },
  {
    id: 'wasm-depthwise-input-multiplier', file: 'src/runtime/tfjs/wasm-conv-grads.ts',
    original: 'for (let k = ch * m; k < (ch + 1) * m; k++) sum +=', replacement: 'for (let k = ch * m; k < ch * m + 1; k++) sum +=',
    tests: ['wasm-conv-grads'], why: 'depthwise input gradient ignores the channel multiplier',
  },
  // --- reconstruction (core/recover/) ---
  {
    id: 'ridge-pull-dropped', file: 'src/core/recover/layer-stats.ts',
    original: 'rhs[i * st.outs + o] = st.cross[i * st.outs + o] + lam * prior[this.index(g, o, c, this.positions[j])];', replacement: 'rhs[i * st.outs + o] = st.cross[i * st.outs + o];',
    tests: ['reconstruct-ridge'], why: 'the ridge pulls towards zero, not the original weights',
  },
  {
    id: 'ridge-not-scaled', file: 'src/core/recover/layer-stats.ts',
    original: 'let lambda = ridge * (trace > 0 ? trace / st.n : 1);', replacement: 'let lambda = ridge * (trace > 0 ? trace / st.n / st.n : 1);',
    tests: ['reconstruct-ridge'], why: 'the ridge is not relative to the mean Gram diagonal',
  },
  {
    id: 'patch-left-pad-is-top', file: 'src/core/recover/layer-stats.ts',
    original: 'const offX = this.positions.map((p) => (p % 3) * geo.dilW - geo.padLeft);', replacement: 'const offX = this.positions.map((p) => (p % 3) * geo.dilW - geo.padTop);',
    tests: ['reconstruct-ridge', 'reconstruct'], why: 'patches read with the top pad as the left one',
  },
  {
    id: 'default-ridge', file: 'src/core/recover/reconstruct.ts',
    original: 'export const DEFAULT_RIDGE = 1e-3;', replacement: 'export const DEFAULT_RIDGE = 1e-6;',
    tests: ['reconstruct-ridge'], why: 'users get another ridge than the documented 1e-3',
  },
  {
    id: 'recovery-writes-reshaped', file: 'src/core/recover/reconstruct.ts',
    original: 'const better = errorAfter <= errorBefore;', replacement: 'const better = errorAfter < 0;',
    tests: ['tfjs-recover', 'recover-pipeline'], why: 'recovery writes the reshaped-only weights',
  },
  // --- fine-tuning (core/finetune/, runtime/onnx-tfjs/trainer.ts) ---
  {
    id: 'mask-not-reapplied', file: 'src/runtime/tfjs/trainer.ts',
    original: 'v.assign(tf.mul(v, this.maskTensors.get(name)!));', replacement: 'v.assign(tf.mul(v, tf.onesLike(this.maskTensors.get(name)!)));',
    tests: ['trainer-masks'], why: 'the masks are not applied again after an optimiser step',
  },
  {
    id: 'finetune-returns-start', file: 'src/core/finetune/loop.ts',
    original: 'weights: best.weights,', replacement: 'weights: start,',
    tests: ['tfjs-finetune', 'finetune-loop'], why: 'fine-tuning returns the starting weights, not the best checkpoint',
  },
  {
    id: 'eta-misses-an-evaluation', file: 'src/core/finetune/loop.ts',
    original: '+ perEval * evalsLeft,', replacement: '+ perEval * (evalsLeft - 1),',
    tests: ['finetune-loop'], why: 'the ETA leaves out an evaluation',
  },
  // --- writing ONNX (formats/onnx/write.ts, wire.ts) ---
  {
    id: 'external-offset-entry-dropped', file: 'src/formats/onnx/write.ts',
    original: 'if (external && !hadOffset && moved !== undefined && moved !== 0) {', replacement: 'if (external && !hadOffset && moved !== undefined && moved < 0) {',
    tests: ['onnx-external-offsets'], why: 'a moved external tensor without an offset entry gets none',
  },
  {
    id: 'external-length-entry-dropped', file: 'src/formats/onnx/write.ts',
    original: 'if (ref.external!.length === undefined) lengths.set(', replacement: 'if (ref.external!.length === -1) lengths.set(',
    tests: ['onnx-external-offsets'], why: 'a tensor without a length entry reads the pieces appended after it',
  },
  {
    id: 'external-offset-not-rewritten', file: 'src/formats/onnx/write.ts',
    original: "k === 'offset' && offset !== undefined ? String(offset) : undefined", replacement: "k === 'offset' && offset !== undefined ? String(0) : undefined",
    tests: ['onnx-roundtrip'], why: 'offset entries keep pointing at the old place',
  },
  {
    id: 'splice-length-prefix-off-by-one', file: 'src/formats/onnx/wire.ts',
    original: '.uint32(chunksLength(payload)).finish();', replacement: '.uint32(chunksLength(payload) + 1).finish();',
    tests: ['onnx-roundtrip'], why: 'a spliced message\'s length prefix is one too long',
  },
  // --- training graphs: the kept layout and the batch innermost (formats/onnx/training, core/finetune) ---
  {
    id: 'kept-piece-reads-first-run', file: 'src/formats/onnx/training/pieces.ts',
    original: 'e.slice(weight, [offsets[i]], [offsets[i] + k], [2])', replacement: 'e.slice(weight, [offsets[i] * 0], [offsets[i] * 0 + k], [2])',
    tests: ['ort-training-fixtures'], why: 'every piece of a weight in the kept layout reads the first piece\'s positions',
  },
  {
    id: 'kept-pack-ignores-order', file: 'src/core/finetune/kept-layout.ts',
    original: 'out[i * k + j] = full[i * 9 + p];', replacement: 'out[i * k + j] = full[i * 9 + j + p * 0];',
    tests: ['masked-optimizer', 'ort-trainer-batch'], why: 'weights are packed from the first k positions, not the kept ones',
  },
  {
    id: 'batch-inner-dy-order', file: 'src/formats/onnx/training/rules.ts',
    original: 'const dyT = e.reshape(e.transpose(dy, inner ? [1, 2, 3, 0] : [1, 0, 2, 3]), [g.co, np]);', replacement: 'const dyT = e.reshape(e.transpose(dy, [1, 0, 2, 3]), [g.co, np]);',
    tests: ['ort-training-rules', 'ort-training-fixtures'], why: 'a folded dW pairs an input with the batch innermost with dY in batch-major order',
  },
  {
    id: 'wasm-adam-moments-swapped', file: 'src/core/finetune/adam-wasm.ts',
    original: 'this.adam(this.at(slot, 0), this.at(slot, 1), this.at(slot, 2), this.at(slot, 3)', replacement: 'this.adam(this.at(slot, 0), this.at(slot, 1), this.at(slot, 3), this.at(slot, 2)',
    tests: ['adam-wasm', 'masked-optimizer'], why: 'the WebAssembly Adam keeps its first moment where the second belongs',
  },
  // --- interruption (cli/main.ts) ---
  {
    id: 'signal-exit-codes-swapped', file: 'cli/main.ts',
    original: "process.exit(signal === 'SIGINT' ? 130 : 143);", replacement: "process.exit(signal === 'SIGINT' ? 143 : 130);",
    tests: ['interrupt'], why: 'SIGINT exits 143 and SIGTERM 130',
  },
];
