/**
 * Escaping for the HTML report. Every string that comes from a report (layer names, paths, reasons,
 * method texts) goes through `esc` before it reaches markup: node names come from users' models.
 */

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe in element content and in quoted attribute values. */
export function esc(value: string | number): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

/**
 * A model's name for titles (paths stay whole elsewhere in the page): the file name, or for a TF.js
 * model.json its folder's name, since every TF.js model is called model.json ("model.json ->
 * model.json" names nothing).
 */
export function baseName(p: string): string {
  const parts = p.split(/[\\/]/).filter((x) => x !== '');
  const last = parts[parts.length - 1] ?? p;
  if (/\.json$/i.test(last) && parts.length > 1 && parts[parts.length - 2] !== '.') return `${parts[parts.length - 2]}/${last}`;
  return last;
}

/** What the files of a model beside its main file are: ONNX external data or TF.js weight shards. */
export function sideFiles(files: readonly { path: string }[]): string {
  return files.some((f) => /\.json$/i.test(f.path)) ? 'model.json and weight shards' : 'model and external data';
}
