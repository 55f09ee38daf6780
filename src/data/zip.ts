/**
 * The table of contents of a zip file (an .npz), read from its central directory without inflating
 * anything: entry names, where each entry's bytes are and how they are compressed. Entries are then
 * read one at a time, and only those that are used (numpy's np.load reads .npz entries lazily too).
 * Layout: PKWARE APPNOTE.TXT sections 4.3.7 (local header), 4.3.12 (central directory header),
 * 4.3.16 (end of central directory), 4.3.14/4.3.15 and 4.5.3 (zip64, which numpy writes).
 */
import { open } from 'node:fs/promises';
import { KpruneError } from '../errors.js';
import type { Compression, Stretch } from './declared-read.js';
import { fsError } from './read-file.js';

export interface ZipEntry {
  name: string;
  /** What the central directory says the entry inflates to (not trusted: reading is capped anyway). */
  size: number;
  /** The stored bytes, found through the entry's local header. */
  stretch: Stretch;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
/** The end record is 22 bytes plus a comment of at most 65535. */
const TAIL = 22 + 0xffff;
/** More entries than any .npz has; also bounds the central directory kprune reads. */
const MAX_ENTRIES = 100_000;

export async function listZip(file: string): Promise<ZipEntry[]> {
  const bad = (why: string) => new KpruneError('bad-data', `not a readable .npz (zip) file: ${why}`, { file });
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw fsError(e, file);
  }
  try {
    const size = (await fh.stat()).size;
    const read = async (at: number, length: number): Promise<Buffer> => {
      if (at < 0 || length < 0 || at + length > size) throw bad('a record points outside the file');
      const b = Buffer.alloc(length);
      const { bytesRead } = await fh.read(b, 0, length, at);
      if (bytesRead !== length) throw bad('the file changed while it was read');
      return b;
    };
    const tailLength = Math.min(size, TAIL);
    const tail = await read(size - tailLength, tailLength);
    let e = -1;
    for (let i = tail.length - 22; i >= 0; i--) if (tail.readUInt32LE(i) === EOCD) { e = i; break; }
    if (e < 0) throw bad('no end-of-central-directory record (truncated?)');
    let count = tail.readUInt16LE(e + 10);
    let cdSize = tail.readUInt32LE(e + 12);
    let cdOffset = tail.readUInt32LE(e + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const eocdAt = size - tailLength + e;
      const loc = await read(eocdAt - 20, 20);
      if (loc.readUInt32LE(0) !== ZIP64_LOCATOR) throw bad('a zip64 file without its zip64 locator');
      const z = await read(safe(loc.readBigUInt64LE(8), bad), 56);
      if (z.readUInt32LE(0) !== ZIP64_EOCD) throw bad('a broken zip64 end record');
      count = safe(z.readBigUInt64LE(32), bad);
      cdSize = safe(z.readBigUInt64LE(40), bad);
      cdOffset = safe(z.readBigUInt64LE(48), bad);
    }
    if (count > MAX_ENTRIES) throw bad(`${count} entries`);
    const cd = await read(cdOffset, cdSize);
    const entries: ZipEntry[] = [];
    let p = 0;
    for (let k = 0; k < count; k++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL) throw bad('a broken central directory');
      const method = cd.readUInt16LE(p + 10);
      let compressed = cd.readUInt32LE(p + 20);
      let uncompressed = cd.readUInt32LE(p + 24);
      const nameLength = cd.readUInt16LE(p + 28);
      const extraLength = cd.readUInt16LE(p + 30);
      const commentLength = cd.readUInt16LE(p + 32);
      let local = cd.readUInt32LE(p + 42);
      if (p + 46 + nameLength + extraLength > cd.length) throw bad('a broken central directory');
      const name = cd.toString('utf8', p + 46, p + 46 + nameLength);
      // Zip64 extra field: the 8-byte values of those fields that are 0xffffffff, in this order.
      const extra = cd.subarray(p + 46 + nameLength, p + 46 + nameLength + extraLength);
      for (let q = 0; q + 4 <= extra.length;) {
        const id = extra.readUInt16LE(q);
        const len = extra.readUInt16LE(q + 2);
        if (id === 0x0001) {
          let r = q + 4;
          const next = (): number => {
            if (r + 8 > q + 4 + len || r + 8 > extra.length) throw bad(`entry "${name}" has a short zip64 field`);
            const v = safe(extra.readBigUInt64LE(r), bad);
            r += 8;
            return v;
          };
          if (uncompressed === 0xffffffff) uncompressed = next();
          if (compressed === 0xffffffff) compressed = next();
          if (local === 0xffffffff) local = next();
        }
        q += 4 + len;
      }
      p += 46 + nameLength + extraLength + commentLength;
      const header = await read(local, 30);
      if (header.readUInt32LE(0) !== LOCAL) throw bad(`entry "${name}" has no local header where the directory says`);
      const start = local + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
      if (start + compressed > size) throw bad(`entry "${name}" runs past the end of the file`);
      if (method !== 0 && method !== 8) throw bad(`entry "${name}" uses compression method ${method} (only stored and deflate are read)`);
      const compression: Compression = method === 0 ? 'none' : 'deflate';
      entries.push({ name, size: uncompressed, stretch: { start, end: start + compressed, compression } });
    }
    return entries;
  } finally {
    await fh.close();
  }
}

function safe(v: bigint, bad: (why: string) => KpruneError): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad('a size or offset beyond 2^53');
  return Number(v);
}
