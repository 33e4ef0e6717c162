// Reading one line of CSV (RFC 4180 quoting, no line breaks inside a field) or of JSONL: shared
// by trace replay (--schedule) and prompt datasets, which read their files a line at a time.

/** The fields of one CSV line; null when a quoted field is not closed. */
export function parseCsvLine(line: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    if (line[i] === '"') {
      let v = "";
      i++;
      for (;;) {
        if (i >= n) return null;
        const c = line[i]!;
        if (c === '"') {
          if (line[i + 1] === '"') {
            v += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += c;
        i++;
      }
      out.push(v);
      if (i < n && line[i] !== ",") return null;
    } else {
      const end = line.indexOf(",", i);
      out.push(end < 0 ? line.slice(i) : line.slice(i, end));
      i = end < 0 ? n : end;
    }
    if (i >= n) return out;
    i++; // the comma
    if (i === n) {
      out.push("");
      return out;
    }
  }
}

/**
 * One JSONL line, which must hold an object. A bad line throws `Err` with a message that starts
 * with `where` (file and line) and, for a value that is no object, shows `example`.
 */
export function parseJsonObjectLine(
  line: string,
  where: string,
  example: string,
  Err: new (message: string) => Error = Error,
): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (err) {
    throw new Err(`${where}: not JSON (${(err as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new Err(`${where}: expected an object such as ${example}`);
  }
  return v as Record<string, unknown>;
}
