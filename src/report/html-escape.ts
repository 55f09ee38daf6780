/**
 * Escaping for the HTML report. Every string that comes from a report (layer names, paths, reasons,
 * method texts) goes through `esc` before it reaches markup: node names come from users' models.
 */

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe in element content and in quoted attribute values. */
export function esc(value: string | number): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

/** The last part of a path, for titles (paths stay whole elsewhere in the page). */
export function baseName(p: string): string {
  const parts = p.split(/[\\/]/);
  return parts[parts.length - 1] || p;
}
