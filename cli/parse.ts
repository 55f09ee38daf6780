import { InvalidArgumentError } from 'commander';

export function parseNumber(flag: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${flag} takes a number, got "${v}"`);
    return n;
  };
}

/** Collects repeated `--layer-shape name=shape` options. */
export function collectPairs(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const i = value.lastIndexOf('=');
  if (i <= 0 || i === value.length - 1) throw new InvalidArgumentError(`expected name=shape, got "${value}"`);
  return { ...previous, [value.slice(0, i)]: value.slice(i + 1) };
}

export function parseInteger(flag: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    // Number('') is 0: an empty value must not silently mean "none".
    if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${flag} takes a whole number, got "${v}"`);
    return n;
  };
}

export function parseList(flag: string): (v: string) => number[] {
  return (v: string) => {
    const xs = v.split(',').map((s) => Number(s.trim()));
    if (xs.length === 0 || v.split(',').some((s) => s.trim() === '') || xs.some((x) => !Number.isFinite(x))) throw new InvalidArgumentError(`${flag} takes numbers separated by commas, got "${v}"`);
    return xs;
  };
}
