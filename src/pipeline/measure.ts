/**
 * Measuring models for the reports, the same way for `prune` (the input and the written model)
 * and `compare` (A and B): bytes on disk, parameters and MACs (report/measure.ts counts them).
 */
import type { LoadedModel, WriteResult } from '../model/loaded-model.js';
import { measureFiles, measureMacs, measureParams } from '../report/measure.js';
import type { ModelFigures } from '../report/report.js';

/**
 * A model's parameters, and its MACs at `outputShapes` (the compute nodes' output dims from one
 * run at `inputShapes`); without them, MACs are unknown for `unknown`.
 */
export function countFigures(
  m: LoadedModel,
  outputShapes: Map<string, number[]> | null,
  inputShapes: Map<string, number[]> | null,
  isConv3x3: (weight: string) => boolean,
  unknown: string,
  known?: ReadonlyMap<string, number>,
): Pick<ModelFigures, 'params' | 'macs'> {
  const inventory = m.inventory(undefined, known);
  return {
    params: measureParams(inventory, isConv3x3),
    macs: inputShapes && outputShapes ? measureMacs(inventory, outputShapes, inputShapes, isConv3x3) : { status: 'unknown', reason: unknown },
  };
}

export interface BeforeAfterOptions {
  /** null: unknown (then MACs are unknown for `macsUnknown`). */
  inputShapes: Map<string, number[]> | null;
  /** false: nothing is run, so MACs are not counted. */
  run: boolean;
  macsUnknown: string;
  /** Is this weight a reshaped layer's (or one of its decomposed pieces)? */
  isLayerWeight: (weight: string) => boolean;
  gzip?: boolean;
  /** Where a written file is while staged (src/io/transaction.ts): measured there, reported where it goes. */
  stagedPath?: (file: string) => string;
}

/** The input model and the model written from it, measured on their files. */
export async function measureBeforeAfter(model: LoadedModel, writtenModel: LoadedModel, written: WriteResult, o: BeforeAfterOptions): Promise<{ before: ModelFigures; after: ModelFigures }> {
  const unknown = o.run ? o.macsUnknown : 'not counted: the model was not run (--no-run), and counting needs one run for the tensor sizes';
  // gzip runs on libuv's thread pool: both sides at once, while the counts run (one model at a
  // time, so that only one is ever loaded in a runtime). One Promise.all, so that a failure of
  // either leaves nothing unhandled. Written all masked, the model has the original's graph, so
  // the original's run gives its tensor sizes too (one runtime load fewer for a large model).
  const counts = async () => {
    const shapesBefore = o.run && o.inputShapes ? await model.outputShapes(o.inputShapes) : null;
    const sameGraph = written.layouts.every((l) => l.applied === 'masked');
    const shapesAfter = o.run && o.inputShapes ? (sameGraph ? shapesBefore : await writtenModel.outputShapes(o.inputShapes)) : null;
    // Weights the writer copied as read have the input's counts: counted once, on the input.
    const inputWeights = new Map(model.inventory().weights.map((w) => [w.name, w]));
    const known = new Map((written.copied ?? []).filter((n) => inputWeights.has(n)).map((n) => [n, inputWeights.get(n)!.nonzero]));
    return {
      before: countFigures(model, shapesBefore, o.inputShapes, o.isLayerWeight, unknown),
      after: countFigures(writtenModel, shapesAfter, o.inputShapes, o.isLayerWeight, unknown, known),
    };
  };
  const finalFiles = written.files.slice().reverse();
  const sizesAfter = async () => {
    const sizes = await measureFiles(finalFiles.map((f) => o.stagedPath?.(f) ?? f), { gzip: o.gzip });
    return { ...sizes, files: sizes.files.map((f, i) => ({ ...f, path: finalFiles[i] })) };
  };
  const [sizeBefore, sizeAfter, { before, after }] = await Promise.all([measureFiles(model.files, { gzip: o.gzip }), sizesAfter(), counts()]);
  return { before: { size: sizeBefore, ...before }, after: { size: sizeAfter, ...after } };
}
