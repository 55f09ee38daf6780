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
