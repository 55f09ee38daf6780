/** How a reshaped layer is stored in the written model. */
export type Layout = 'masked' | 'decomposed' | 'sparse';

/**
 * The reshaped layer a decomposed piece's kernel belongs to: pieces are named "<weight>/kp_..." (a
 * TF.js piece's bias, "<weight>/kp_piece0/bias", is a bias, not a 3x3 weight).
 */
export function layerOfPiece(weight: string, ids: ReadonlySet<string>): string | undefined {
  const i = weight.lastIndexOf('/kp_');
  if (i < 0 || weight.endsWith('/bias')) return undefined;
  const id = weight.slice(0, i);
  return ids.has(id) ? id : undefined;
}

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
