/** Colours only on a TTY, never with NO_COLOR set (https://no-color.org) or in --json mode. */
import { ANSI, PLAIN, Style } from '../src/index.js';

export function terminalStyle(json: boolean | undefined, stream: NodeJS.WriteStream = process.stdout): Style {
  const noColor = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '';
  return !json && stream.isTTY === true && !noColor ? ANSI : PLAIN;
}
