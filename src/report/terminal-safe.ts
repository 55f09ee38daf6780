/**
 * Text from files (model, layer and node names, paths, messages quoting them) made safe to print on
 * a terminal. A model can name a layer "\x1b]0;pwned\x07" or "\x1b[2J": printed raw, that retitles
 * or clears the user's terminal, or hides text. Control characters (C0, DEL, C1), line and paragraph
 * separators and bidirectional overrides are written as visible escapes (\x1b, \u202e) instead.
 */

// C0 controls, DEL, C1 controls; U+2028/2029 (line breaks to some terminals and editors); the
// bidirectional embeddings, overrides and isolates that reorder what is shown ("Trojan source").
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeOne(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** The text with every unsafe character written as an escape; `keepNewlines` keeps "\n" (for whole rendered pages). */
export function terminalSafe(text: string, keepNewlines = false): string {
  return text.replace(UNSAFE, (c) => (keepNewlines && c === '\n' ? c : escapeOne(c)));
}

/**
 * A copy of a report (plain JSON data) with every string made terminal-safe, for the text
 * renderers, which then add their own colour codes.
 */
export function terminalSafeData<T>(value: T): T {
  if (typeof value === 'string') return terminalSafe(value) as T;
  if (Array.isArray(value)) return value.map((v) => terminalSafeData(v)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[terminalSafe(k)] = terminalSafeData(v);
    return out as T;
  }
  return value;
}
