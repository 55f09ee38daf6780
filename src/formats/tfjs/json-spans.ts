/**
 * Where each value of a JSON document sits in its text, so that a writer can replace one value
 * (a quantization range, the weights manifest) and leave every other byte of model.json as it was:
 * key order, spacing, number spelling and fields kprune does not know all survive.
 */

export type JsonSpan =
  | { kind: 'object'; start: number; end: number; entries: { key: string; value: JsonSpan }[] }
  | { kind: 'array'; start: number; end: number; items: JsonSpan[] }
  | { kind: 'scalar'; start: number; end: number };

/** Spans of a document JSON.parse accepts (call JSON.parse first: this scanner does not validate). */
export function jsonSpans(text: string): JsonSpan {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  };
  const str = (): string => {
    const start = i;
    i++; // opening quote
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): JsonSpan => {
    ws();
    const start = i;
    const c = text[i];
    if (c === '{') {
      i++;
      const entries: { key: string; value: JsonSpan }[] = [];
      ws();
      if (text[i] === '}') {
        i++;
        return { kind: 'object', start, end: i, entries };
      }
      for (;;) {
        ws();
        const key = str();
        ws();
        i++; // ':'
        entries.push({ key, value: value() });
        ws();
        if (text[i++] === '}') return { kind: 'object', start, end: i, entries };
      }
    }
    if (c === '[') {
      i++;
      const items: JsonSpan[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return { kind: 'array', start, end: i, items };
      }
      for (;;) {
        items.push(value());
        ws();
        if (text[i++] === ']') return { kind: 'array', start, end: i, items };
      }
    }
    if (c === '"') {
      str();
      return { kind: 'scalar', start, end: i };
    }
    while (i < text.length && !',]} \n\r\t'.includes(text[i])) i++;
    return { kind: 'scalar', start, end: i };
  };
  return value();
}

/** The span at a path of keys and indices, or undefined. */
export function spanAt(root: JsonSpan, path: (string | number)[]): JsonSpan | undefined {
  let node: JsonSpan | undefined = root;
  for (const step of path) {
    if (!node) return undefined;
    if (typeof step === 'number') node = node.kind === 'array' ? node.items[step] : undefined;
    else node = node.kind === 'object' ? node.entries.find((e) => e.key === step)?.value : undefined;
  }
  return node;
}

export interface TextEdit {
  start: number;
  end: number;
  text: string;
}

/** Applies non-overlapping edits to a text. */
export function applyEdits(text: string, edits: TextEdit[]): string {
  const sorted = [...edits].sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  for (const e of sorted) {
    if (e.start < at) throw new Error('overlapping JSON edits');
    out += text.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + text.slice(at);
}

/**
 * JSON text in the spacing of the document it goes into: Python's json.dump (the TF.js converter)
 * writes ", " and ": ", TF.js itself writes none.
 */
export function stringifyLike(value: unknown, sample: string): string {
  const compact = JSON.stringify(value);
  if (!/"\s*:\s/.test(sample.slice(0, 4096))) return compact;
  // Re-space outside strings only.
  return compact.replace(/("(?:[^"\\]|\\.)*")|([,:])/g, (m, s: string | undefined, p: string | undefined) => (s !== undefined ? s : `${p} `));
}
