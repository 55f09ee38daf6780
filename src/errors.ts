/**
 * The one error type kprune throws on purpose. The CLI maps `code` to an exit status and prints
 * `oneLine()`; library users can switch on `code`, and `message` names the file ("model.onnx: no
 * such file"), so that printing it alone says which file.
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
  /** What went wrong, without the file: `message` is "<file>: <reason>", or the reason alone. */
  readonly reason: string;

  constructor(code: ErrorCode, reason: string, context: KpruneErrorContext = {}) {
    super(context.file ? `${context.file}: ${reason}` : reason, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = 'KpruneError';
    this.reason = reason;
    this.code = code;
    this.file = context.file;
    this.node = context.node;
    this.suggestion = context.suggestion;
  }

  /**
   * One line: "<file>: <reason> (<suggestion>)". A reason quoting a runtime's error or a value
   * from the file can be any length (TF.js quotes a whole malformed config): it is cut at
   * MAX_MESSAGE characters, so the line stays readable; `message` and `reason` keep all of it.
   */
  oneLine(): string {
    const where = this.file ? `${this.file}: ` : '';
    const hint = this.suggestion ? ` (${this.suggestion})` : '';
    const reason = this.reason.length > MAX_MESSAGE ? `${this.reason.slice(0, MAX_MESSAGE)}... (${this.reason.length - MAX_MESSAGE} more characters)` : this.reason;
    return `${where}${reason}${hint}`.replace(/\s*\n\s*/g, ' ');
  }
}

/**
 * An error's text to quote inside another error about `file`: a KpruneError about the same file (or
 * none) without its file, so the outer one does not name it twice; any other error's message whole.
 */
export function reasonOf(e: unknown, file?: string): string {
  if (e instanceof KpruneError) return e.file === undefined || e.file === file ? e.reason : e.message;
  return e instanceof Error ? e.message : String(e);
}

/**
 * Runs f (sync or async); a KpruneError it throws without a file gets `file` (format-neutral code,
 * such as the core's checks of weights and statistics, does not know which file they came from).
 */
export function inFile<T>(file: string, f: () => T): T {
  const attach = (e: unknown): never => {
    if (e instanceof KpruneError && e.file === undefined) {
      throw new KpruneError(e.code, e.reason, { file, node: e.node, suggestion: e.suggestion, cause: e });
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
