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
