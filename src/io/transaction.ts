/**
 * All the files of one run — the model with its data files or shards, the report, the masks — as
 * one transaction: checked before a byte is written, staged, then put in place together; on any
 * failure nothing of it remains, and a file it was to replace is left as it was.
 *
 * 1. Declare. Callers say what the run reads (`readFile`, `readFolder`) and what it will write
 *    (`declare`). `validate` checks every output before anything is written: its folder exists
 *    (or may be created), it is not a folder or a device, it is none of the files read — by real
 *    identity (identity.ts: links, symlinked folders, hard links, `./` spellings) — and no two
 *    outputs are one file.
 * 2. Stage. `write` puts each file, under its final base name, in a hidden staging folder beside
 *    its target (`.kprune-<pid>-<random>/`, same folder, so the same file system and renames are
 *    atomic). Files that refer to each other by relative paths (a model and its data files, a
 *    model.json and its shards) share a staging folder with the same layout, so a staged model
 *    loads as it will in place: verification runs on the staged copy, before anything is visible.
 * 3. Commit. Synchronous, so no signal handler can run in the middle of it: for each file, a hard
 *    link keeps what the target held (a rename away where links are not supported), then the
 *    staged file is renamed over the target. If any step fails, every placed file is put back as
 *    it was. Then the staging folders go.
 *
 * Until the commit, an interrupted process (the CLI's SIGINT/SIGTERM handler) removes the staging
 * folders recursively: everything staged is inside them, and each folder and file is created
 * synchronously, so none can appear after the handler ran.
 *
 * With KPRUNE_WRITE_LOG set, every file committed is appended to that file, one path per line: an
 * audit trail, which the test suite uses to hand every model kprune writes to independent checkers.
 */
import { appendFileSync, existsSync, linkSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { CopiedCheck, MadeChunk, madeChunk, readsBackAs } from './read-back.js';
import path from 'node:path';
import { KpruneError } from '../errors.js';
import { Chunk, ChunkError, onInterrupt, writeChunksSyncLater } from './cleanup.js';
import { FileIdentity, identify, isInside, sameFile, withinFolder } from './identity.js';
import { openDirectForWriting } from './direct.js';
import { isFileRange } from './file-range.js';

export interface OutputSpec {
  path: string;
  /** What the file is, for messages: "the output model", "the report". */
  role: string;
  /**
   * The folder the file is staged under, keeping its path below it (default: the file's folder).
   * Files that refer to each other by relative paths share one root.
   */
  root?: string;
  /** The root folder may be created (and goes again on failure): a TF.js model's output folder. */
  createRoot?: boolean;
  /** The writer the file belongs to: writing a model again replaces its first staged files. */
  group?: string;
}

interface Output {
  shown: string;
  target: string;
  role: string;
  root: string;
  createRoot: boolean;
  group?: string;
  staged?: string;
  /** Staging order, which is commit order: data files before the model that names them. */
  order: number;
  /** Settles when the staged file is on disk (to null, or the flush's error); the commit awaits it. */
  synced?: Promise<unknown>;  /** What was written (views and chunk makers, not copies), to read the staged file back against. */
  data?: Uint8Array | Chunk[];
  /** The chunks made by functions, recorded while written (read-back.ts). */
  made?: Map<number, MadeChunk>;
  /** Written around the page cache (direct.ts): read back the same way. */
  direct?: boolean;
}

interface Input {
  shown: string;
  role: string;
  folder: boolean;
}

interface Stage {
  dir: string;
  root: string;
  /** The first folder created for the root, when the transaction created it. */
  created?: string;
}

export class OutputTransaction {
  private readonly inputs: Input[] = [];
  private readonly outputs: Output[] = [];
  private readonly stages = new Map<string, Stage>();
  private inputIds?: Promise<FileIdentity[]>;
  private validated = false;
  private state: 'open' | 'committed' | 'aborted' = 'open';
  private staging = 0;
  private unregister?: () => void;

  /** A file the run reads: no output may be it. */
  readFile(file: string, role: string): this {
    this.inputs.push({ shown: file, role, folder: false });
    this.inputIds = undefined;
    this.validated = false;
    return this;
  }

  /** A folder the run reads files from (a data set): no output may go inside it. */
  readFolder(folder: string, role: string): this {
    this.inputs.push({ shown: folder, role, folder: true });
    this.inputIds = undefined;
    this.validated = false;
    return this;
  }

  /** An output the run will write. Declaring the same path with the same role again updates it. */
  declare(spec: OutputSpec): this {
    this.checkOpen();
    const target = path.resolve(spec.path);
    const root = path.resolve(spec.root ?? path.dirname(target));
    if (!isInside(root, target)) throw new Error(`output ${target} is not inside its root ${root}`);
    const fields = { shown: spec.path, target, role: spec.role, root, createRoot: spec.createRoot ?? false, group: spec.group };
    const same = this.outputs.find((o) => o.target === target && o.role === spec.role);
    if (same) Object.assign(same, fields);
    else this.outputs.push({ ...fields, order: Number.MAX_SAFE_INTEGER });
    this.validated = false;
    // From its first output on, an interrupt ends the transaction: nothing more is staged after
    // the handler ran, and whatever was staged goes.
    this.unregister ??= onInterrupt(() => this.abort());
    return this;
  }

  /** Forgets a group's outputs, removing what of them was staged (a model written a second time). */
  dropGroup(group: string): void {
    this.checkOpen();
    for (let i = this.outputs.length - 1; i >= 0; i--) {
      const o = this.outputs[i];
      if (o.group !== group) continue;
      if (o.staged) rmSync(o.staged, { force: true });
      this.outputs.splice(i, 1);
    }
    this.validated = false;
  }

  private identities(): Promise<FileIdentity[]> {
    this.inputIds ??= Promise.all(this.inputs.map((i) => identify(i.shown)));
    return this.inputIds;
  }

  /**
   * Whether `file` is taken: something the run reads (or a folder it reads from), or an output
   * declared outside `group`. Writers that choose names (ONNX data files) pass over taken ones.
   */
  async taken(file: string, group: string): Promise<boolean> {
    const id = await identify(file);
    const inputs = await this.identities();
    if (this.inputs.some((inp, k) => (inp.folder ? withinFolder(id, inputs[k]) : sameFile(id, inputs[k])))) return true;
    const others = this.outputs.filter((o) => o.group !== group);
    return (await Promise.all(others.map((o) => identify(o.target)))).some((o) => sameFile(id, o));
  }

  /** Checks every declared output (see the top of this file); throws a KpruneError naming it. */
  async validate(): Promise<void> {
    const inputs = await this.identities();
    const outs = await Promise.all(this.outputs.map((o) => identify(o.target)));
    for (const [k, o] of this.outputs.entries()) {
      const id = outs[k];
      if (id.kind === 'folder') throw new KpruneError('usage', `${o.role} would replace a folder`, { file: o.shown, suggestion: 'give a file path' });
      if (id.kind === 'other') throw new KpruneError('usage', `${o.role} would replace something that is not a regular file (a device or a pipe)`, { file: o.shown });
      this.checkFolder(o);
      for (const [j, inp] of this.inputs.entries()) {
        if (inp.folder ? withinFolder(id, inputs[j]) : sameFile(id, inputs[j])) {
          const how = inp.folder ? ` would be written inside ${inp.role} ${inp.shown}` : ` would overwrite ${inp.role} ${inp.shown}${linkNote(id, inputs[j])}`;
          throw new KpruneError('unsafe-path', `${o.role}${how}`, { file: o.shown, suggestion: 'kprune never writes over or into what it reads; choose another path' });
        }
      }
      for (let j = 0; j < k; j++) {
        if (sameFile(id, outs[j])) {
          throw new KpruneError('unsafe-path', `${this.outputs[j].role} and ${o.role} would be the same file${linkNote(id, outs[j])}`, { file: o.shown, suggestion: 'give each output its own path' });
        }
      }
    }
    this.validated = true;
  }

  /**
   * Stages one declared output's bytes (validating every output first, if anything changed since
   * the last check) and returns the staged path, where it can be read and verified.
   */
  async write(file: string, data: Uint8Array | Chunk[]): Promise<string> {
    this.checkOpen();
    const target = path.resolve(file);
    const o = this.outputs.find((x) => x.target === target);
    if (!o) throw new Error(`write to undeclared output ${target}`);
    if (!this.validated) await this.validate();
    this.checkOpen();
    const stage = this.stageFor(o);
    const staged = path.join(stage.dir, path.relative(o.root, o.target));
    let fd: number;
    try {
      mkdirSync(path.dirname(staged), { recursive: true });
      if (o.staged) rmSync(o.staged, { force: true });
      fd = openSync(staged, 'wx');
    } catch (e) {
      throw ioError(`cannot write ${o.role} in ${path.dirname(o.shown)}`, o, e);
    }
    o.staged = staged;
    o.order = this.staging++;
    try {
      const made = new Map<number, MadeChunk>();
      // Large outputs that copy from an input (a streamed model) go around the page cache (direct.ts).
      const direct = Array.isArray(data) && data.some(isFileRange) ? openDirectForWriting(staged) : null;
      o.direct = direct !== null;
      o.synced = (await writeChunksSyncLater(fd, data, (i, bytes) => made.set(i, madeChunk(bytes)), direct)).synced;
      o.data = data;
      o.made = made;
    } catch (e) {
      if (e instanceof ChunkError) throw e.inner;
      throw ioError(`cannot write ${o.role}`, o, e);
    }
    return staged;
  }

  /**
   * Reads a staged output back, streaming, and checks that it holds exactly the bytes it was
   * written from (read-back.ts): every byte checked in a few MiB of memory, for a model whose
   * copied parts are not otherwise read back.
   */
  async checkStaged(file: string, copied: CopiedCheck = 'compare'): Promise<void> {
    const o = this.outputs.find((x) => x.target === path.resolve(file));
    if (!o?.staged || !o.data) throw new Error(`${file} is not staged`);
    let same: boolean;
    try {
      same = readsBackAs(o.staged, o.data, o.made ?? new Map(), o.direct === true, copied);
    } catch (e) {
      throw ioError(`cannot read back ${o.role}`, o, e);
    }
    if (!same) throw new KpruneError('io', `${o.role} does not read back as it was written: the disk or file system lost or changed bytes`, { file: o.shown });
  }

  /** Where a declared output is staged (until the commit): verification reads it there. */
  stagedPath(file: string): string {
    const o = this.outputs.find((x) => x.target === path.resolve(file));
    if (!o?.staged) throw new Error(`${file} is not staged`);
    return o.staged;
  }

  /**
   * The error with staged paths replaced by the paths they were staged for: verifying the staged
   * model must not name a hidden staging folder.
   */
  errorAsShown(e: KpruneError): KpruneError {
    let file = e.file;
    let message = e.reason;
    for (const o of this.outputs) {
      if (!o.staged) continue;
      if (file !== undefined && path.resolve(file) === o.staged) file = o.shown;
      message = message.split(o.staged).join(o.shown);
    }
    if (file === e.file && message === e.reason) return e;
    return new KpruneError(e.code, message, { file, node: e.node, suggestion: e.suggestion, cause: e });
  }

  /** The staging folder for an output's root, created (with the root, if allowed) on first use. */
  private stageFor(o: Output): Stage {
    const known = this.stages.get(o.root);
    if (known) return known;
    let created: string | undefined;
    try {
      if (this.creatable(o.root)) created = mkdirSync(o.root, { recursive: true });
    } catch (e) {
      throw ioError(`cannot create the folder ${o.root} for ${o.role}`, o, e);
    }
    const stage: Stage = { dir: path.join(o.root, `.kprune-${process.pid}-${randomBytes(4).toString('hex')}`), root: o.root, created };
    // Known to abort() before it exists, created synchronously: an interrupt never misses it.
    this.stages.set(o.root, stage);
    try {
      mkdirSync(stage.dir);
    } catch (e) {
      throw ioError(`cannot write ${o.role} in ${o.root}`, o, e);
    }
    return stage;
  }

  /**
   * Puts every staged output in place, together: in staging order, each replacing its target; on
   * any failure, everything placed is put back as it was and the error is thrown. Synchronous, so
   * a signal handler sees the run either before the commit or after it.
   */
  async commit(): Promise<string[]> {
    this.checkOpen();
    await this.validate();
    this.checkOpen();
    const missing = this.outputs.find((o) => !o.staged);
    if (missing) throw new Error(`${missing.role} ${missing.target} was declared but never written`);
    // Every staged file on disk before any is put in place (their flushes ran while the run verified).
    for (const o of this.outputs) {
      const failed = await o.synced;
      this.checkOpen();
      if (failed) {
        this.abort();
        throw ioError(`cannot write ${o.role}`, o, failed);
      }
    }
    const order = [...this.outputs].sort((a, b) => a.order - b.order);
    const journal: { o: Output; backup?: string; movedAway: boolean; placed: boolean }[] = [];
    const folders: string[] = [];
    let current: Output | undefined;
    try {
      for (const [k, o] of order.entries()) {
        current = o;
        const parent = path.dirname(o.target);
        if (!existsSync(parent)) {
          // Sub-folders below a root (TF.js shards named "sub/x.bin") appear only now.
          const first = mkdirSync(parent, { recursive: true });
          if (first) folders.push(first);
        }
        const step: (typeof journal)[number] = { o, movedAway: false, placed: false };
        journal.push(step);
        if (exists(o.target)) {
          step.backup = path.join(this.stages.get(o.root)!.dir, `.replaced-${k}`);
          try {
            linkSync(o.target, step.backup);
          } catch {
            renameSync(o.target, step.backup);
            step.movedAway = true;
          }
        }
        renameSync(o.staged!, o.target);
        step.placed = true;
      }
      current = undefined;
      if (process.env.KPRUNE_WRITE_LOG) appendFileSync(process.env.KPRUNE_WRITE_LOG, order.map((o) => `${o.target}\n`).join(''));
    } catch (e) {
      for (const step of journal.reverse()) {
        try {
          if (step.backup && (step.placed || step.movedAway)) renameSync(step.backup, step.o.target);
          else if (step.placed) rmSync(step.o.target, { force: true });
        } catch {
          // Best effort: the others are still restored.
        }
      }
      for (const f of folders.reverse()) rmSync(f, { recursive: true, force: true });
      this.abort();
      const o = current ?? order[order.length - 1];
      throw ioError(`cannot put ${o.role} in place; nothing was changed`, o, e);
    }
    this.state = 'committed';
    this.removeStages();
    this.unregister?.();
    return order.map((o) => o.target);
  }

  /** Removes everything staged (and folders created for it); synchronous, for signal handlers too. */
  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    this.removeStages();
    // Only the folders this transaction created, deepest first, and only while empty.
    const created = new Set<string>();
    for (const stage of this.stages.values()) {
      if (!stage.created) continue;
      for (let dir = stage.root; dir === stage.created || isInside(stage.created, dir); dir = path.dirname(dir)) created.add(dir);
    }
    for (const dir of [...created].sort((a, b) => b.length - a.length)) {
      try {
        rmdirSync(dir);
      } catch {
        // Not empty (something else was put there) or already gone: left alone.
      }
    }
    this.unregister?.();
  }

  /**
   * Whether a missing folder may be created: it is the root of an output that may create its root
   * (a TF.js model's new folder), lies below it, or above it (made on the way, as by mkdir -p).
   */
  private creatable(dir: string): boolean {
    return this.outputs.some((o) => o.createRoot && (dir === o.root || isInside(o.root, dir) || isInside(dir, o.root)));
  }

  /** The output's folder exists, or may be created (see `creatable`). */
  private checkFolder(o: Output): void {
    const dir = path.dirname(o.target);
    let st;
    try {
      st = statSync(dir);
    } catch {
      if (this.creatable(dir)) return;
      throw new KpruneError('io', `the folder ${path.dirname(o.shown)} for ${o.role} does not exist`, { file: o.shown, suggestion: 'create it first, or choose another path' });
    }
    if (!st.isDirectory()) throw new KpruneError('io', `${path.dirname(o.shown)} (the folder for ${o.role}) is not a folder`, { file: o.shown });
  }

  private removeStages(): void {
    for (const stage of this.stages.values()) rmSync(stage.dir, { recursive: true, force: true, maxRetries: 3 });
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new Error(`the output transaction is already ${this.state}`);
  }
}

function exists(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

function linkNote(a: FileIdentity, b: FileIdentity): string {
  if (a.entry === b.entry) return '';
  if (a.real === b.real || a.entry === b.real || a.real === b.entry) return ' (the same file through a link)';
  return ' (a hard link to it)';
}

function ioError(what: string, o: Output, e: unknown): KpruneError {
  if (e instanceof KpruneError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  return new KpruneError('io', `${what} (${code ?? String(e)})`, { file: o.shown, cause: e });
}

/** The files a loaded model consists of, as reads: the model file first, then its data files. */
export function readModelFiles(tx: OutputTransaction, files: string[], which = 'the input model'): OutputTransaction {
  files.forEach((f, i) => tx.readFile(f, i === 0 ? which : `a file of ${which}`));
  return tx;
}

/**
 * Runs `stage` in the caller's transaction, or in a new one (reading `reads`, a model's files)
 * that is committed at once: for writers called on their own.
 */
export async function inTransaction<T>(tx: OutputTransaction | undefined, reads: string[], stage: (t: OutputTransaction) => Promise<T>): Promise<T> {
  if (tx) return stage(tx);
  const own = readModelFiles(new OutputTransaction(), reads);
  try {
    const result = await stage(own);
    await own.commit();
    return result;
  } catch (e) {
    own.abort();
    throw e;
  }
}
