/**
 * The one error type kprune throws on purpose. The CLI maps `code` to an exit status and prints
 * `message` as one line; library users can switch on `code`.
 */
export type ErrorCode =
  | 'usage' // a bad option or argument
  | 'not-found' // an input file that does not exist
  | 'bad-model' // not a model, truncated or corrupt, or inconsistent
  | 'unsupported' // a valid model using something kprune cannot handle (named in the message)
  | 'no-3x3' // a model without a single prunable 3x3 convolution
  | 'bad-shape' // an unknown shape name or a malformed custom mask
  | 'bad-data' // data that does not fit the model
  | 'unsafe-path' // a path that escapes the model's folder, or an output that would clobber an input
  | 'limit' // a declared size over a resource limit (src/util/limits.ts; raised by environment variable)
  | 'io' // the file system refused a read or a write
  | 'runtime'; // the execution runtime failed on a model

export interface KpruneErrorContext {
  /** The file the error concerns. */
  file?: string;
  /** The graph node or layer the error concerns. */
  node?: string;
  /** What the user can do about it. */
  suggestion?: string;
  cause?: unknown;
}

/** Longest message `oneLine` prints whole. */
const MAX_MESSAGE = 500;

export class KpruneError extends Error {
  readonly code: ErrorCode;
  readonly file?: string;
  readonly node?: string;
  readonly suggestion?: string;

  constructor(code: ErrorCode, message: string, context: KpruneErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = 'KpruneError';
    this.code = code;
    this.file = context.file;
    this.node = context.node;
    this.suggestion = context.suggestion;
  }

  /**
   * One line: "<file>: <message> (<suggestion>)". A message quoting a runtime's error or a value
   * from the file can be any length (TF.js quotes a whole malformed config): it is cut at
   * MAX_MESSAGE characters, so the line stays readable; `message` itself keeps all of it.
   */
  oneLine(): string {
    const where = this.file ? `${this.file}: ` : '';
    const hint = this.suggestion ? ` (${this.suggestion})` : '';
    const message = this.message.length > MAX_MESSAGE ? `${this.message.slice(0, MAX_MESSAGE)}... (${this.message.length - MAX_MESSAGE} more characters)` : this.message;
    return `${where}${message}${hint}`.replace(/\s*\n\s*/g, ' ');
  }
}

/**
 * Runs f (sync or async); a KpruneError it throws without a file gets `file` (format-neutral code,
 * such as the core's checks of weights and statistics, does not know which file they came from).
 */
export function inFile<T>(file: string, f: () => T): T {
  const attach = (e: unknown): never => {
    if (e instanceof KpruneError && e.file === undefined) {
      throw new KpruneError(e.code, e.message, { file, node: e.node, suggestion: e.suggestion, cause: e });
    }
    throw e;
  };
  try {
    const result = f();
    return (result instanceof Promise ? result.catch(attach) : result) as T;
  } catch (e) {
    return attach(e);
  }
}

export function isKpruneError(e: unknown): e is KpruneError {
  return e instanceof KpruneError;
}
