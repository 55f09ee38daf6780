/**
 * The chosen masks as a document for external trainers (`--emit-masks`): a user whose model
 * outgrows this machine applies them in their own trainer (PyTorch, Keras; README has snippets),
 * fine-tunes at scale, and brings the result back to `kprune compare`.
 */
import { parseMask, maskHas } from '../core/lattice.js';
import { PruneReport } from './report.js';

export interface MaskEntry {
  /** The weight tensor's name in the model. */
  weight: string;
  /** The nodes (layers) using it. */
  nodes: string[];
  /**
   * The PyTorch module path guessed from the weight name ("layer1.0.conv1.weight") or from the
   * node name as torch.onnx writes it ("/layer1/layer1.0/conv1/Conv"); null when neither says.
   */
  torchModule: string | null;
  shape: string;
  mask: string;
  /** Rows of the 3x3 mask, 1 = kept: broadcast it over [out, in] (PyTorch OIHW) or [in, out] (Keras HWIO). */
  mask3x3: number[][];
  /** [outChannels, inChannelsPerGroup, 3, 3] */
  kernel: number[];
  group: number;
}

export interface MasksDocument {
  masksVersion: 1;
  model: string;
  spec: string;
  layers: MaskEntry[];
}

/** "/layer1/layer1.0/conv1/Conv" -> "layer1.0.conv1": torch.onnx writes scopes, some already qualified. */
export function torchModuleFromNode(node: string): string | null {
  const segments = node.split('/').filter(Boolean);
  if (segments.length < 2) return null;
  let path = '';
  for (const seg of segments.slice(0, -1)) path = path && seg.startsWith(`${path}.`) ? seg : path ? `${path}.${seg}` : seg;
  return path || null;
}

export function torchModuleOf(weight: string, node: string): string | null {
  if (/^[A-Za-z_][\w.]*\.weight$/.test(weight)) return weight.slice(0, -'.weight'.length);
  return torchModuleFromNode(node);
}

export function masksDocument(report: PruneReport): MasksDocument {
  return {
    masksVersion: 1,
    model: report.input.path,
    spec: report.plan.spec,
    layers: report.layers.map((l) => {
      const m = parseMask(l.mask);
      return {
        weight: l.id,
        nodes: l.nodes,
        torchModule: torchModuleOf(l.id, l.nodes[0] ?? l.name),
        shape: l.chosenShape,
        mask: l.mask,
        mask3x3: [0, 1, 2].map((r) => [0, 1, 2].map((c) => (maskHas(m, 3 * r + c) ? 1 : 0))),
        kernel: l.shape,
        group: l.group,
      };
    }),
  };
}
