// Prompt datasets for loadfiles: `dataset("prompts.jsonl")` hands out the rows of a JSONL or CSV
// file in turn or in a seeded random order. Each worker indexes the file once (the byte offset of
// every row) and reads a row only when it is handed out, so no user holds the whole file.
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { parseCsvLine, parseJsonObjectLine } from "../core/delimited.js";
import { mulberry32 } from "../core/random.js";

export interface DatasetOptions {
  /** "round-robin" (default): rows in file order, then again; "random": a seeded shuffle per pass. */
  order?: "round-robin" | "random";
  /** Seed of the random order: the same seed gives the same order. Default: the run's --seed, else random. */
  seed?: number;
}

/** A row: a JSONL line's object as written, or a CSV line as { column: text }. */
export type DatasetRow = Record<string, unknown>;

export interface Dataset<T = DatasetRow> {
  /** The next row in the dataset's order; after the last one it starts over. */
  next(): T;
  /** Rows in the file. */
  readonly size: number;
  /** Row `i` (0-based, file order). */
  at(i: number): T;
}

/** One file's row offsets, built once per worker and shared by every dataset over that file. */
interface FileIndex {
  fd: number;
  csv: boolean;
  header: string[];
  /** Start and end byte of each row. */
  starts: Float64Array;
  ends: Float64Array;
}

const indexes = new Map<string, FileIndex>();

/** The run's --seed, set by the worker before it loads the loadfile; null when none was given. */
let runSeed: number | null = null;

/** Not part of the loadfile API: the worker hands over the run's seed. */
export function setDatasetSeed(seed: number | null): void {
  runSeed = seed;
}

/** Lines of a file as byte ranges, read in chunks so a large file never sits whole in memory. */
function* lineRanges(fd: number, size: number): Generator<[number, number]> {
  const buf = Buffer.allocUnsafe(1 << 16);
  let start = 0;
  let pos = 0;
  while (pos < size) {
    const n = readSync(fd, buf, 0, buf.length, pos);
    if (n <= 0) break;
    for (let i = 0; i < n; i++) {
      if (buf[i] === 0x0a) {
        yield [start, pos + i];
        start = pos + i + 1;
      }
    }
    pos += n;
  }
  if (start < size) yield [start, size];
}

function readRange(fd: number, start: number, end: number): string {
  const buf = Buffer.allocUnsafe(end - start);
  readSync(fd, buf, 0, buf.length, start);
  return buf.toString("utf8").replace(/\r$/, "");
}

function indexFile(path: string, shown: string): FileIndex {
  let fd: number;
  let size: number;
  try {
    fd = openSync(path, "r");
    size = statSync(path).size;
  } catch (err) {
    throw new Error(`dataset ${shown}: cannot read it (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  const csv = /\.csv$/i.test(path);
  const starts: number[] = [];
  const ends: number[] = [];
  let header: string[] = [];
  let line = 0;
  try {
    for (const [a, b] of lineRanges(fd, size)) {
      line++;
      const text = readRange(fd, a, b);
      if (text.trim() === "") continue;
      const where = `dataset ${shown}:${line}`;
      if (csv && header.length === 0) {
        const h = parseCsvLine(text.replace(/^\uFEFF/, ""));
        if (!h) throw new Error(`${where}: the header has an unclosed quote`);
        header = h.map((x) => x.trim());
        continue;
      }
      // Every row is checked once here, so a bad line fails the run at its start, not mid-test.
      if (csv) {
        const f = parseCsvLine(text);
        if (!f) throw new Error(`${where}: unclosed quote`);
        if (f.length !== header.length) {
          throw new Error(`${where}: ${f.length} fields, but the header has ${header.length}`);
        }
      } else {
        parseJsonObjectLine(text, where, '{"prompt": "..."}');
      }
      starts.push(a);
      ends.push(b);
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  if (starts.length === 0) {
    closeSync(fd);
    throw new Error(`dataset ${shown}: no rows`);
  }
  return { fd, csv, header, starts: Float64Array.from(starts), ends: Float64Array.from(ends) };
}

/**
 * A dataset of prompts (or any rows) from a JSONL or CSV file, a path relative to the directory
 * cicada runs in. Call it at the top of the loadfile: every user of a worker then shares one
 * index and one order. Bad rows fail at the call, naming the file and line.
 */
export function dataset<T = DatasetRow>(file: string, options: DatasetOptions = {}): Dataset<T> {
  const order = options.order ?? "round-robin";
  if (order !== "round-robin" && order !== "random") {
    throw new Error(`dataset ${file}: order must be "round-robin" or "random", got ${JSON.stringify(order)}`);
  }
  const path = resolve(file);
  let ix = indexes.get(path);
  if (!ix) {
    ix = indexFile(path, file);
    indexes.set(path, ix);
  }
  const idx = ix;
  const size = idx.starts.length;
  const at = (i: number): T => {
    if (!Number.isInteger(i) || i < 0 || i >= size) {
      throw new RangeError(`dataset ${file}: no row ${i} (it has ${size})`);
    }
    const text = readRange(idx.fd, idx.starts[i]!, idx.ends[i]!);
    if (!idx.csv) return JSON.parse(text) as T;
    const f = parseCsvLine(text)!;
    const row: Record<string, string> = {};
    for (const [j, h] of idx.header.entries()) row[h] = f[j]!;
    return row as T;
  };
  let cursor = 0;
  let perm: Uint32Array | null = null;
  // Seeded at the first shuffle, not here: a loadfile's top level may run before the worker has
  // handed over the run's seed (a single-threaded run loads the loadfile once, before the plan).
  let rand: (() => number) | undefined;
  const shuffle = (): Uint32Array => {
    rand ??= mulberry32(options.seed ?? runSeed ?? Math.floor(Math.random() * 2 ** 32));
    const p = perm ?? new Uint32Array(size).map((_, i) => i);
    for (let i = size - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  };
  return {
    size,
    at,
    next(): T {
      if (cursor === size) cursor = 0;
      if (order === "random" && cursor === 0) perm = shuffle();
      const i = perm ? perm[cursor]! : cursor;
      cursor++;
      return at(i);
    },
  };
}
