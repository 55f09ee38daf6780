/** The sweep's JSON shape (`kprune sweep --json`): the report owns its schema. */
export interface SweepPoint {
  /** `cross`, or `auto` with its budget. */
  shape: string;
  budget: number | null;
  keptFraction: number;
  /** Top-1 with labels, else top-1 agreement with the original; occluded likewise (null when off). */
  metric: 'top1' | 'agreement';
  quality: number;
  occludedQuality: number | null;
  /** Kept 3x3 weights / all 3x3 weights; all parameters after / before. */
  params: { after: number; before: number; ratio: number };
  macs: { after: number; before: number; ratio: number } | null;
  fileBytes: { after: number; before: number; ratio: number };
  latencyRatio: number | null;
  pareto: boolean;
  command: string;
}

export interface SweepReport {
  schemaVersion: 1;
  kind: 'sweep';
  tool: { name: 'kprune'; version: string };
  input: { path: string; format: string };
  original: { metric: 'top1' | 'agreement'; quality: number; occludedQuality: number | null };
  evalSamples: number;
  calibSamples: number;
  points: SweepPoint[];
  method: Record<string, string>;
  timings: Record<string, number>;
  /**
   * With a largest drop (`--max-drop`): the point that keeps the fewest MACs (parameters where MACs
   * are not known) among those within it, by index into `points`, or null when none is.
   */
  withinDrop?: { maxDrop: number; point: number | null; by: 'macs' | 'params'; smallestDrop: number };
}
