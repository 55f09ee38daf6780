/**
 * How deeply a JSON text nests. JSON.parse itself takes any depth, but everything that walks the
 * parsed value recursively (JSON.stringify, Array.prototype.join, model.json's span scanner, the
 * Keras topology walk) overflows the stack somewhere past ten thousand levels: a 100,000-deep array
 * of a few hundred kilobytes would crash kprune. Documents are refused above MAX_JSON_DEPTH instead,
 * before they are parsed. Real ones are far shallower: a Keras topology with nested models nests
 * about 10 levels per model.
 */

/** Python's json module stops at about the same depth (its recursion limit, 1000). */
export const MAX_JSON_DEPTH = 1000;

/** True when brackets nest deeper than `max` in the text (strings are skipped; the text need not be valid). */
export function jsonTooDeep(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip a string, with its escapes.
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}
