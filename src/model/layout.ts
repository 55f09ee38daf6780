/** How a reshaped layer is stored in the written model. */
export type Layout = 'masked' | 'decomposed' | 'sparse';

// `--layout auto`: a layer timed in each form in the model's own runtime, and the choice.
export interface LayoutTiming {
  layer: string;
  choice: Layout;
  /** Median ms of the layer (all its uses) in each form. */
  maskedMs: number;
  decomposedMs: number | null;
  note?: string;
}

/** What a format writer did with each layer's requested layout. */
export interface LayoutOutcome {
  layer: string;
  requested: Layout;
  applied: Layout;
  /** Why the requested layout was not applied, or what it became (e.g. "3x1 + 1x2 dilated 1x2"). */
  note?: string;
  /** Weights stored for this layer in the written file. */
  storedWeights: number;
}
