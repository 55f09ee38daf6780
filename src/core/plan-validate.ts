/**
 * Checking a plan that comes from outside (`--plan report.json`, the library's `plan` option): a
 * hand-edited or damaged file must be a clear error naming the entry and field, never a crash later
 * in reshaping or in the report. What comes back is a fresh plan holding only the known fields, with
 * the derived ones (positions, kept parameters, kept fraction) recomputed from mask and params, so
 * nothing unchecked (a 100,000-deep array under an unknown key) reaches the report.
 */
import { KpruneError } from '../errors.js';
import { Mask, maskCount, maskName, maskToString, parseMask } from './lattice.js';
import { PlanEntry, PrunePlan } from './plan.js';

const CHOSEN_BY: readonly PlanEntry['chosenBy'][] = ['fixed', 'cycle', 'auto-weights', 'auto-data', 'override', 'auto-protected'];

type Doc = Record<string, unknown>;

const isObject = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What a value is, for messages: "a number", "null", "a list", ... */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}...` : v}"`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v === 'object' ? 'an object' : typeof v;
}

/** A plan, or a report that embeds one (`plan`): the plan, checked. */
export function planFromDocument(doc: unknown, file?: string): PrunePlan {
  if (isObject(doc) && doc.planVersion === undefined && isObject(doc.plan)) return validatePlan(doc.plan, file);
  return validatePlan(doc, file);
}

export function validatePlan(value: unknown, file?: string): PrunePlan {
  const fail = (message: string): never => {
    throw new KpruneError('usage', `${file ? '' : 'the plan: '}${message}`, { file, suggestion: 'pass a plan or report written by kprune (its "plan")' });
  };
  if (!isObject(value)) return fail(`not a kprune plan or report (the document is ${kindOf(value)})`);
  if (value.planVersion !== 1) return fail(`not a kprune plan or report ("planVersion" is ${kindOf(value.planVersion)}, expected 1)`);
  if (typeof value.spec !== 'string') return fail(`"spec" must be a shape name, got ${kindOf(value.spec)}`);
  const budget = value.budget;
  if (budget !== undefined && !(typeof budget === 'number' && budget > 0 && budget <= 1)) return fail(`"budget" must be a number in (0, 1], got ${kindOf(budget)}`);
  if (!Array.isArray(value.entries)) return fail(`"entries" must be a list of layers, got ${kindOf(value.entries)}`);
  const seen = new Set<string>();
  const entries = value.entries.map((raw: unknown, i: number): PlanEntry => {
    const at = `entry ${i}`;
    if (!isObject(raw)) return fail(`${at} must be an object, got ${kindOf(raw)}`);
    const text = (key: string, fallback?: string): string => {
      const v = raw[key];
      if (v === undefined && fallback !== undefined) return fallback;
      if (typeof v !== 'string' || (key === 'layer' && v === '')) return fail(`${at}: "${key}" must be a ${key === 'layer' ? 'non-empty ' : ''}string, got ${kindOf(v)}`);
      return v;
    };
    const layer = text('layer');
    if (seen.has(layer)) return fail(`${at}: layer "${layer}" is planned twice`);
    seen.add(layer);
    const maskText = text('mask');
    let mask: Mask;
    try {
      mask = parseMask(maskText);
    } catch (e) {
      return fail(`${at} ("${layer}"): ${(e as Error).message}`);
    }
    const params = raw.params;
    if (typeof params !== 'number' || !Number.isSafeInteger(params) || params <= 0 || params % 9 !== 0) {
      return fail(`${at} ("${layer}"): "params" must be the layer's weight count (a positive multiple of 9), got ${kindOf(params)}`);
    }
    for (const key of ['positions', 'keptParams'] as const) {
      if (raw[key] !== undefined && typeof raw[key] !== 'number') fail(`${at} ("${layer}"): "${key}" must be a number, got ${kindOf(raw[key])}`);
    }
    const chosenBy = raw.chosenBy ?? 'fixed';
    if (!CHOSEN_BY.includes(chosenBy as PlanEntry['chosenBy'])) return fail(`${at} ("${layer}"): "chosenBy" must be one of ${CHOSEN_BY.join(', ')}, got ${kindOf(chosenBy)}`);
    const positions = maskCount(mask);
    return {
      layer,
      name: text('name', layer),
      shape: text('shape', maskName(mask)),
      mask: maskToString(mask),
      positions,
      params,
      keptParams: (params / 9) * positions,
      chosenBy: chosenBy as PlanEntry['chosenBy'],
    };
  });
  const params = entries.reduce((a, e) => a + e.params, 0);
  const kept = entries.reduce((a, e) => a + e.keptParams, 0);
  return { planVersion: 1, spec: value.spec, ...(budget !== undefined ? { budget } : {}), entries, keptFraction: params > 0 ? kept / params : 1 };
}
