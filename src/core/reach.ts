/**
 * What a model can give before anything is taken: the share of its parameters and of its
 * multiply-accumulates that sit in 3x3 layers, per kind (standard, grouped, depthwise). Reshaping
 * touches nothing else, so these shares bound any saving; `cross` (5 of 9 positions) saves 4/9 of
 * them. A model whose 3x3 layers are mostly depthwise (MobileNets) has little to give.
 */
import { Conv3x3Layer, ConvKind, layerParams } from '../model/conv.js';

export interface Breakdown {
  /** The whole model. */
  model: number;
  /** In the prunable 3x3 layers, and per kind. */
  conv3x3: number;
  standard: number;
  grouped: number;
  depthwise: number;
}

export interface Reach {
  params: Breakdown;
  /** null when MACs could not be counted (see `macsUnknown`). */
  macs: Breakdown | null;
  macsUnknown?: string;
  /** What `cross` would save, as shares of the whole model (MACs null when unknown). */
  crossSaves: { params: number; macs: number | null };
  /** True when even the thinnest shapes would save little (see SMALL_SAVING). */
  small: boolean;
  /** One line for people: the shares, and when `small`, that little can be saved. */
  summary: string;
}

/** Below this share of the model's parameters and MACs, what `cross` saves is called small. */
export const SMALL_SAVING = 0.1;

function breakdown(layers: Conv3x3Layer[], model: number, size: (l: Conv3x3Layer) => number): Breakdown {
  const by: Record<ConvKind, number> = { standard: 0, grouped: 0, depthwise: 0 };
  for (const l of layers) by[l.kind] += size(l);
  return { model, conv3x3: by.standard + by.grouped + by.depthwise, ...by };
}

const pct = (x: number) => `${(100 * x).toFixed(x < 0.1 ? 1 : 0)}%`;

function describe(b: Breakdown, what: string): string {
  const kinds = (['standard', 'grouped', 'depthwise'] as const).filter((k) => b[k] > 0);
  const share = b.model > 0 ? b.conv3x3 / b.model : 0;
  const split = kinds.length > 1 ? ` (${kinds.map((k) => `${k} ${pct(b.model > 0 ? b[k] / b.model : 0)}`).join(', ')})` : kinds.length === 1 ? ` (all ${kinds[0]})` : '';
  return `${pct(share)} of the ${what}${split}`;
}

/**
 * `modelParams`: float weights of the whole model; `layerMacs`: dense MACs per 3x3 layer id and
 * `modelMacs` of the whole model, when counted.
 */
export function reachOf(layers: Conv3x3Layer[], modelParams: number, macs: { layerMacs: ReadonlyMap<string, number>; modelMacs: number } | { unknown: string }): Reach {
  const params = breakdown(layers, modelParams, layerParams);
  const m = 'unknown' in macs ? null : breakdown(layers, macs.modelMacs, (l) => macs.layerMacs.get(l.id) ?? 0);
  const save = (b: Breakdown) => (b.model > 0 ? (b.conv3x3 / b.model) * (4 / 9) : 0);
  const crossSaves = { params: save(params), macs: m ? save(m) : null };
  const small = crossSaves.params < SMALL_SAVING && (crossSaves.macs === null || crossSaves.macs < SMALL_SAVING);
  let summary = `3x3 layers hold ${describe(params, 'parameters')}${m ? ` and ${describe(m, 'MACs')}` : ''}: the most reshaping can touch`;
  if (small) {
    summary += `; little to gain: even cross saves only ${pct(crossSaves.params)} of the parameters${crossSaves.macs !== null ? ` and ${pct(crossSaves.macs)} of the MACs` : ''}`;
  }
  return { params, macs: m, ...('unknown' in macs ? { macsUnknown: macs.unknown } : {}), crossSaves, small, summary };
}
