import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ParseError,
  type ParserHandler,
  parseHeaders,
  type ResponseHead,
  ResponseParser,
} from "../src/protocols/http/fast/parser.js";
import { rng } from "./helpers.js";

/**
 * Fuzz and property tests of the fast-path response parser. Everything is driven by a seeded PRNG, so a
 * failure names the seed/iteration that reproduces it.
 */

type Rand = () => number;
const int = (rand: Rand, n: number) => Math.floor(rand() * n);
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[int(rand, xs.length)]!;

function bytes(...parts: (string | Buffer)[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : p)));
}

function chunk(data: string | Buffer, ext = ""): Buffer {
  const b = typeof data === "string" ? Buffer.from(data, "latin1") : data;
  return bytes(`${b.length.toString(16)}${ext}\r\n`, b, "\r\n");
}

interface Seed {
  raw: Buffer;
  method: "GET" | "HEAD";
  /** Needs finish() to complete (read-until-close body). */
  eof?: boolean;
}

const binary = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 31) & 0xff));

/** Valid responses the mutations start from. */
const SEEDS: Seed[] = [
  {
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"),
    method: "GET",
  },
  { raw: bytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), method: "GET" },
  {
    raw: bytes(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      chunk("Hello"),
      chunk(", world"),
      "0\r\n\r\n",
    ),
    method: "GET",
  },
  {
    raw: bytes(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      chunk("abc", ";a=b"),
      chunk("de", ';q="x y"'),
      "0\r\nX-T: 1\r\nX-U: 2\r\n\r\n",
    ),
    method: "GET",
  },
  { raw: bytes("HTTP/1.1 204 No Content\r\nDate: now\r\n\r\n"), method: "GET" },
  { raw: bytes('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 99\r\n\r\n'), method: "GET" },
  { raw: bytes("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"), method: "HEAD" },
  {
    raw: bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    method: "GET",
  },
  {
    raw: bytes(
      "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew",
    ),
    method: "GET",
  },
  { raw: bytes("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close"), method: "GET", eof: true },
  { raw: bytes("HTTP/1.0 200 OK\r\n\r\nold"), method: "GET", eof: true },
  { raw: bytes("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nold"), method: "GET" },
  {
    raw: bytes(
      "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-D: 1\r\nx-d: 2\r\nContent-Length: 1\r\n\r\n!",
    ),
    method: "GET",
  },
  { raw: bytes(`HTTP/1.1 200 OK\r\nContent-Length: ${binary.length}\r\n\r\n`, binary), method: "GET" },
  {
    raw: bytes(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      chunk(binary.subarray(0, 100)),
      chunk(binary.subarray(100)),
      "0\r\n\r\n",
    ),
    method: "GET",
  },
  { raw: bytes("HTTP/1.1 404 \r\nX-Time: 12:34:56\r\nContent-Length: 4\r\n\r\nnope"), method: "GET" },
  { raw: bytes("HTTP/1.1 200\r\nCONTENT-LENGTH: 2\r\n\r\nok"), method: "GET" },
  {
    raw: bytes("HTTP/1.1 500 Oops\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"),
    method: "GET",
  },
  {
    raw: bytes("HTTP/1.1 200 OK\r\nX-Many: ", "m".repeat(2000), "\r\nContent-Length: 1\r\n\r\n1"),
    method: "GET",
  },
];

/** Bytes and strings that steer mutations into the parser's interesting branches. */
const INTERESTING_BYTES = [13, 10, 58, 32, 9, 48, 49, 57, 102, 70, 59, 34, 92, 61, 44, 0, 127, 255, 128];
const INTERESTING_STRINGS = [
  "\r\n",
  "\r\n\r\n",
  "\n",
  "\r",
  "0\r\n\r\n",
  "Content-Length: 5\r\n",
  "Content-Length: 0\r\n",
  "Content-Length: -1\r\n",
  "Transfer-Encoding: chunked\r\n",
  "Connection: close\r\n",
  "HTTP/1.1 100 Continue\r\n\r\n",
  "HTTP/1.1 200 OK\r\n",
  "HTTP/1.1 101 Switching Protocols\r\n\r\n",
  "ffffffff\r\n",
  ';ext="q"',
  " ",
];

function mutate(rand: Rand, input: Buffer): Buffer {
  let b = Buffer.from(input);
  const count = 1 + int(rand, 4);
  for (let k = 0; k < count; k++) {
    const at = int(rand, b.length + 1);
    switch (int(rand, 9)) {
      case 0: // flip a bit
        if (b.length > 0) b[at % b.length]! ^= 1 << int(rand, 8);
        break;
      case 1: // set an interesting byte
        if (b.length > 0) b[at % b.length] = pick(rand, INTERESTING_BYTES);
        break;
      case 2: // set a random byte
        if (b.length > 0) b[at % b.length] = int(rand, 256);
        break;
      case 3: {
        // insert random bytes
        const ins = Buffer.from(Array.from({ length: 1 + int(rand, 8) }, () => int(rand, 256)));
        b = Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
        break;
      }
      case 4: // insert an interesting string
        b = Buffer.concat([
          b.subarray(0, at),
          Buffer.from(pick(rand, INTERESTING_STRINGS), "latin1"),
          b.subarray(at),
        ]);
        break;
      case 5: {
        // delete a range
        const n = 1 + int(rand, 16);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
        break;
      }
      case 6: // truncate
        b = b.subarray(0, at);
        break;
      case 7: {
        // duplicate a range
        const from = int(rand, b.length + 1);
        const n = int(rand, 64);
        b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + n), b.subarray(at)]);
        break;
      }
      default: {
        // splice in a slice of another seed
        const other = pick(rand, SEEDS).raw;
        const from = int(rand, other.length);
        b = Buffer.concat([
          b.subarray(0, at),
          other.subarray(from, from + 1 + int(rand, 80)),
          b.subarray(at),
        ]);
      }
    }
  }
  return b;
}

function randomSplit(rand: Rand, raw: Buffer, maxPieces: number): Buffer[] {
  if (raw.length > 0 && rand() < 0.03)
    return Array.from({ length: raw.length }, (_, i) => raw.subarray(i, i + 1));
  const n = 1 + int(rand, maxPieces);
  const cuts = Array.from({ length: n - 1 }, () => int(rand, raw.length + 1)).sort((x, y) => x - y);
  const pieces: Buffer[] = [];
  let prev = 0;
  for (const c of cuts) {
    pieces.push(raw.subarray(prev, c));
    prev = c;
  }
  pieces.push(raw.subarray(prev));
  return pieces;
}

interface Response {
  head: ResponseHead;
  body: Buffer;
}

/**
 * A handler that asserts the contract as callbacks arrive: onHead → onBody* → onComplete; a final status;
 * no body for HEAD/204/304; never more body than the Content-Length framing announced, exactly that much at
 * onComplete; body chunks are non-empty views of the input being executed.
 */
class Checker implements ParserHandler {
  readonly responses: Response[] = [];
  private open: { head: ResponseHead; chunks: Buffer[]; bytes: number; limit: number } | null = null;
  current: Buffer = Buffer.alloc(0);
  constructor(private readonly methods: string[]) {}

  onHead(head: ResponseHead): void {
    assert.equal(this.open, null, "onHead while a response is open");
    const i = this.responses.length;
    assert.ok(i < this.methods.length, "more responses than expect() calls");
    assert.ok(
      Number.isInteger(head.status) && head.status >= 200 && head.status <= 999,
      `status ${head.status}`,
    );
    assert.equal(typeof head.statusText, "string");
    assert.equal(typeof head.rawHeaders, "string");
    assert.ok(!head.rawHeaders.endsWith("\r\n"), "rawHeaders has no final CRLF");
    for (const name of Object.keys(parseHeaders(head.rawHeaders))) assert.equal(name, name.toLowerCase());
    assert.ok(
      head.contentLength === -1 || (Number.isSafeInteger(head.contentLength) && head.contentLength >= 0),
    );
    const noBody = this.methods[i] === "HEAD" || head.status === 204 || head.status === 304;
    if (head.chunked) {
      assert.equal(head.contentLength, -1, "chunked framing reports no content-length");
      assert.ok(!noBody, "chunked flag on a response without body");
    }
    const limit = noBody
      ? 0
      : head.chunked
        ? Number.POSITIVE_INFINITY
        : head.contentLength >= 0
          ? head.contentLength
          : -1;
    if (limit === -1) assert.equal(head.close, true, "read-until-close body without close");
    this.open = { head, chunks: [], bytes: 0, limit: limit === -1 ? Number.POSITIVE_INFINITY : limit };
  }

  onBody(chunk: Buffer): void {
    const o = this.open;
    assert.ok(o, "onBody outside a response");
    assert.ok(chunk.length > 0, "empty body chunk");
    assert.equal(chunk.buffer, this.current.buffer, "body chunk is not a view of the input");
    assert.ok(
      chunk.byteOffset >= this.current.byteOffset &&
        chunk.byteOffset + chunk.length <= this.current.byteOffset + this.current.length,
      "body chunk outside the input",
    );
    o.bytes += chunk.length;
    assert.ok(o.bytes <= o.limit, `body ${o.bytes} bytes > announced ${o.limit}`);
    o.chunks.push(Buffer.from(chunk));
  }

  onComplete(): void {
    const o = this.open;
    assert.ok(o, "onComplete outside a response");
    if (Number.isFinite(o.limit)) assert.equal(o.bytes, o.limit, "body length differs from the framing");
    this.responses.push({ head: o.head, body: Buffer.concat(o.chunks) });
    this.open = null;
  }
}

interface Outcome {
  responses: Response[];
  error: ParseError | null;
}

/**
 * Feeds pieces; any throw that is not a ParseError (or a failed assertion in the checker) propagates.
 * With `reused`, each piece is copied to the start of one buffer full of stale bytes and fed as
 * `execute(buffer, length)`, as the connection feeds a socket's reads: nothing past the end may count.
 */
function run(
  pieces: Buffer[],
  methods: string[],
  finish: boolean,
  maxHeaderBytes?: number,
  reused?: Buffer,
): Outcome {
  const checker = new Checker(methods);
  const parser = new ResponseParser(checker, maxHeaderBytes ? { maxHeaderBytes } : undefined);
  for (const m of methods) parser.expect(m);
  try {
    for (const piece of pieces) {
      if (reused) {
        piece.copy(reused, 0);
        checker.current = reused.subarray(0, piece.length);
        parser.execute(reused, piece.length);
      } else {
        checker.current = piece;
        parser.execute(piece);
      }
    }
    if (finish) parser.finish();
  } catch (err) {
    if (!(err instanceof ParseError)) throw err;
    assert.match(err.code, /^HPE_[A-Z_]+$/);
    assert.ok(err.message.length > 0);
    // The parser stays failed until reset().
    assert.throws(() => parser.execute(Buffer.from("HTTP/1.1 200 OK\r\n\r\n")), ParseError);
    return { responses: checker.responses, error: err };
  }
  assert.equal(parser.busy, checker.responses.length < methods.length, "busy");
  return { responses: checker.responses, error: null };
}

function summary(o: Outcome) {
  return {
    error: o.error?.code ?? null,
    responses: o.responses.map((r) => ({ ...r.head, body: r.body.toString("latin1") })),
  };
}

describe("ResponseParser fuzz", () => {
  it("mutated and random input: only ParseError, legal callback order, exact framing, bounded time", () => {
    const rand = rng(0xc1cada);
    const budgetMs = 7000;
    const target = 40_000;
    const started = performance.now();
    let iterations = 0;
    let errors = 0;
    let completes = 0;
    let slowest = 0;
    while (iterations < target && performance.now() - started < budgetMs) {
      const t0 = performance.now();
      const kind = rand();
      let raw: Buffer;
      let methods: string[];
      let eof = false;
      if (kind < 0.8) {
        // Mutated seed(s), sometimes several back to back.
        const n = rand() < 0.25 ? 2 + int(rand, 2) : 1;
        const seeds = Array.from({ length: n }, () => pick(rand, SEEDS));
        raw = mutate(rand, Buffer.concat(seeds.map((s) => s.raw)));
        methods = seeds.map((s) => s.method);
        eof = seeds[seeds.length - 1]!.eof === true || rand() < 0.3;
      } else if (kind < 0.9) {
        raw = Buffer.from(Array.from({ length: int(rand, 300) }, () => int(rand, 256)));
        methods = [pick(rand, ["GET", "HEAD"])];
        eof = rand() < 0.5;
      } else {
        // A valid-looking start, then noise: gets past the status line more often.
        const noise = Buffer.from(
          Array.from({ length: int(rand, 200) }, () => pick(rand, [int(rand, 256), 13, 10, 58, 32])),
        );
        raw = bytes(
          pick(rand, [
            "HTTP/1.1 200 OK\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.0 ",
          ]),
          noise,
        );
        methods = ["GET"];
        eof = rand() < 0.5;
      }
      const pieces = randomSplit(rand, raw, 6);
      let outcome: Outcome;
      try {
        outcome = run(pieces, methods, eof, rand() < 0.1 ? 64 + int(rand, 512) : undefined);
      } catch (err) {
        assert.fail(
          `iteration ${iterations}: ${(err as Error).stack}\ninput ${JSON.stringify(raw.toString("latin1"))}`,
        );
      }
      if (outcome.error) errors++;
      completes += outcome.responses.length;
      slowest = Math.max(slowest, performance.now() - t0);
      iterations++;
    }
    const elapsed = performance.now() - started;
    assert.ok(iterations >= 20_000, `only ${iterations} iterations in ${Math.round(elapsed)} ms`);
    assert.ok(elapsed < budgetMs + 1000, `took ${elapsed} ms`);
    assert.ok(slowest < 1000, `one input took ${slowest} ms`);
    // The corpus mutations must exercise both outcomes, or the fuzz is not reaching the parser.
    assert.ok(errors > iterations / 20, `errors: ${errors}/${iterations}`);
    assert.ok(completes > iterations / 20, `completed responses: ${completes}/${iterations}`);
  });

  it("a reused read buffer with stale bytes past the end parses exactly as fresh pieces", () => {
    const rand = rng(0x5eed);
    // Stale bytes that would matter if read: line ends, digits, header-ish text.
    const stale = Buffer.from(
      Array.from({ length: 4096 }, () => pick(rand, [13, 10, 48, 57, 58, 32, 72, 84, int(rand, 256)])),
    );
    let compared = 0;
    for (let k = 0; k < 6000; k++) {
      const seeds = Array.from({ length: rand() < 0.25 ? 2 : 1 }, () => pick(rand, SEEDS));
      const clean = Buffer.concat(seeds.map((x) => x.raw));
      const raw = rand() < 0.7 ? mutate(rand, clean) : clean;
      if (raw.length > stale.length) continue;
      const methods = seeds.map((x) => x.method);
      const eof = seeds[seeds.length - 1]!.eof === true || rand() < 0.3;
      const pieces = randomSplit(rand, raw, 6);
      const fresh = summary(run(pieces, methods, eof));
      const buffer = Buffer.from(stale);
      assert.deepStrictEqual(
        summary(run(pieces, methods, eof, undefined, buffer)),
        fresh,
        `input ${JSON.stringify(raw.toString("latin1"))}`,
      );
      compared++;
    }
    assert.ok(compared > 5000, `compared ${compared}`);
  });

  it("a head that repeats the one before parses as if walked afresh; one byte changed is walked again", () => {
    // The parser remembers the last final head of its thread (a server repeats the same head),
    // so each input is parsed twice: right after the seed it was made from (the memo holds a
    // head that may differ from it by one byte) and right after an unrelated head.
    const rand = rng(0xbeef);
    const other = bytes("HTTP/1.1 201 Created\r\nX-Other: 1\r\nContent-Length: 2\r\n\r\nok");
    const heads = SEEDS.filter((x) => !x.eof);
    let differed = 0;
    for (let k = 0; k < 4000; k++) {
      const seed = pick(rand, heads);
      const raw = Buffer.from(seed.raw);
      const headEnd = raw.indexOf("\r\n\r\n") + 4;
      if (rand() < 0.8) {
        raw[int(rand, headEnd)] = pick(rand, [0, 9, 10, 13, 32, 48, 58, 127, int(rand, 256)]);
        differed++;
      }
      const method = rand() < 0.2 ? "HEAD" : seed.method;
      run([seed.raw], [seed.method], false);
      const afterSeed = summary(run([raw], [method], true));
      run([other], ["GET"], false);
      const afterOther = summary(run([raw], [method], true));
      assert.deepStrictEqual(afterSeed, afterOther, `input ${JSON.stringify(raw.toString("latin1"))}`);
    }
    assert.ok(differed > 3000, `changed ${differed}`);
  });

  it("unmutated seeds parse identically after random splits (and pipelined)", () => {
    const rand = rng(42);
    const whole = SEEDS.map((s) => summary(run([s.raw], [s.method], s.eof === true)));
    whole.forEach((w, i) => {
      assert.equal(w.error, null, `seed ${i}`);
      assert.equal(w.responses.length, 1, `seed ${i}`);
    });
    for (let k = 0; k < 3000; k++) {
      const i = int(rand, SEEDS.length);
      const s = SEEDS[i]!;
      assert.deepStrictEqual(
        summary(run(randomSplit(rand, s.raw, 8), [s.method], s.eof === true)),
        whole[i],
        `seed ${i}`,
      );
    }
    for (let k = 0; k < 500; k++) {
      const idx = Array.from({ length: 2 + int(rand, 3) }, () => int(rand, SEEDS.length)).filter(
        (i) => !SEEDS[i]!.eof,
      );
      const raw = Buffer.concat(idx.map((i) => SEEDS[i]!.raw));
      const got = summary(
        run(
          randomSplit(rand, raw, 10),
          idx.map((i) => SEEDS[i]!.method),
          false,
        ),
      );
      assert.deepStrictEqual(got, { error: null, responses: idx.flatMap((i) => whole[i]!.responses) });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Property test: generated valid responses round-trip exactly.

const TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const FRAMING_NAMES = new Set(["content-length", "transfer-encoding", "connection"]);

function randomToken(rand: Rand, min: number, max: number): string {
  let s = "";
  const n = min + int(rand, max - min + 1);
  for (let i = 0; i < n; i++) s += TCHAR[int(rand, TCHAR.length)];
  return s;
}

/** A field value: visible ASCII, obs-text, inner SP/HTAB; no leading whitespace (it is not part of the value). */
function randomValue(rand: Rand): string {
  const n = int(rand, 40);
  let s = "";
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (r < 0.7) s += String.fromCharCode(0x21 + int(rand, 0x5e));
    else if (r < 0.8) s += String.fromCharCode(0x80 + int(rand, 0x80));
    else if (r < 0.95 && s.length > 0) s += " ";
    else if (s.length > 0) s += "\t";
  }
  return s;
}

function randomCase(rand: Rand, s: string): string {
  return s
    .split("")
    .map((c) => (rand() < 0.5 ? c.toUpperCase() : c.toLowerCase()))
    .join("");
}

interface Generated {
  raw: Buffer;
  method: "GET" | "HEAD";
  eof: boolean;
  expected: {
    status: number;
    statusText: string;
    headers: Record<string, string | string[]>;
    body: string;
  } & Pick<ResponseHead, "contentLength" | "chunked" | "close">;
}

/** The documented parseHeaders model, written independently: lower-case, set-cookie array, ", " joins. */
function model(fields: [string, string][]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of fields) {
    const k = name.toLowerCase();
    if (k === "set-cookie") out[k] = [...((out[k] as string[] | undefined) ?? []), value];
    else out[k] = k in out ? `${out[k]}, ${value}` : value;
  }
  return out;
}

function generate(rand: Rand, last: boolean): Generated {
  const method = rand() < 0.15 ? "HEAD" : "GET";
  const status = pick(
    rand,
    [200, 200, 200, 201, 202, 204, 206, 301, 302, 304, 400, 404, 418, 429, 500, 503, 599, 999],
  );
  const minor = rand() < 0.15 ? 0 : 1;
  const reasonKind = int(rand, 4);
  const reason =
    reasonKind === 0
      ? null
      : reasonKind === 1
        ? ""
        : reasonKind === 2
          ? "OK"
          : `${randomToken(rand, 1, 8)} ${randomValue(rand)}`;
  const parts: (string | Buffer)[] = [];
  // Interim responses first.
  for (let i = int(rand, 3) - 1; i > 0 || (i === 0 && rand() < 0.5); i--) {
    parts.push(`HTTP/1.1 ${pick(rand, [100, 102, 103])} Interim\r\n`);
    for (let h = int(rand, 3); h > 0; h--) parts.push(`Link: <${randomToken(rand, 1, 10)}>\r\n`);
    parts.push("\r\n");
  }
  parts.push(`HTTP/1.${minor} ${status}${reason === null ? "" : ` ${reason}`}\r\n`);
  const fields: [string, string][] = [];
  for (let h = int(rand, 12); h > 0; h--) {
    let name = randomToken(rand, 1, 20);
    if (FRAMING_NAMES.has(name.toLowerCase())) name = `x-${name}`;
    fields.push([name, randomValue(rand)]);
    if (rand() < 0.15) fields.push([randomCase(rand, name), randomValue(rand)]); // duplicate
  }
  if (rand() < 0.2) {
    fields.push(["Set-Cookie", `a=${randomToken(rand, 1, 5)}`]);
    if (rand() < 0.5) fields.push(["set-cookie", `b=${randomToken(rand, 1, 5)}`]);
  }
  const conn = pick(rand, [null, null, "keep-alive", "close", "Keep-Alive, Upgrade", "CLOSE"]);
  if (conn !== null) fields.push([randomCase(rand, "Connection"), conn]);
  const noBody = method === "HEAD" || status === 204 || status === 304;
  const framing = noBody
    ? pick(rand, ["none", "cl", "chunked"])
    : pick(rand, last ? ["cl", "cl", "chunked", "chunked", "eof"] : ["cl", "chunked"]);
  const bodyLen = rand() < 0.2 ? 0 : int(rand, rand() < 0.1 ? 20000 : 600);
  const body = Buffer.from(Array.from({ length: bodyLen }, () => int(rand, 256)));
  let contentLength = -1;
  if (framing === "cl") {
    contentLength = noBody ? int(rand, 5000) : bodyLen;
    fields.push([randomCase(rand, "Content-Length"), String(contentLength)]);
  } else if (framing === "chunked") {
    fields.push([randomCase(rand, "Transfer-Encoding"), pick(rand, ["chunked", "CHUNKED", "gzip, chunked"])]);
  }
  // Shuffle so framing headers land anywhere.
  for (let i = fields.length - 1; i > 0; i--) {
    const j = int(rand, i + 1);
    [fields[i], fields[j]] = [fields[j]!, fields[i]!];
  }
  for (const [n, v] of fields) parts.push(`${n}:${rand() < 0.8 ? " " : rand() < 0.5 ? "" : " \t "}${v}\r\n`);
  parts.push("\r\n");
  if (!noBody) {
    if (framing === "chunked") {
      let at = 0;
      while (at < body.length) {
        const n = Math.min(body.length - at, 1 + int(rand, rand() < 0.5 ? 16 : 700));
        const ext = rand() < 0.2 ? pick(rand, [";a", ";a=b", ';q="x \\" y"', ";a=b;c=d"]) : "";
        const size = n.toString(16);
        parts.push(
          `${rand() < 0.1 ? "00" : ""}${rand() < 0.5 ? size : size.toUpperCase()}${ext}\r\n`,
          body.subarray(at, at + n),
          "\r\n",
        );
        at += n;
      }
      parts.push("0\r\n");
      for (let t = rand() < 0.3 ? 1 + int(rand, 3) : 0; t > 0; t--)
        parts.push(`${randomToken(rand, 1, 10)}: ${randomValue(rand)}\r\n`);
      parts.push("\r\n");
    } else {
      parts.push(body);
    }
  }
  const tokens = (conn ?? "")
    .toLowerCase()
    .split(",")
    .map((s) => s.trim());
  const close =
    tokens.includes("close") ||
    (minor === 0 && !tokens.includes("keep-alive")) ||
    (!noBody && framing === "eof") ||
    (!noBody && framing === "chunked" && minor === 0); // RFC 9112 §6.1: HTTP/1.0 + Transfer-Encoding
  return {
    raw: bytes(...parts),
    method,
    eof: !noBody && framing === "eof",
    expected: {
      status,
      statusText: reason ?? "",
      headers: model(fields),
      body: noBody ? "" : body.toString("latin1"),
      contentLength: noBody || framing === "cl" ? contentLength : -1,
      chunked: !noBody && framing === "chunked",
      close,
    },
  };
}

describe("ResponseParser property: generated valid responses round-trip", () => {
  it("random status, headers, body and framing, pipelined, under random splits", () => {
    const rand = rng(20251122);
    const started = performance.now();
    let sequences = 0;
    let responses = 0;
    while (sequences < 4000 && performance.now() - started < 6000) {
      const n = 1 + int(rand, 4);
      const gen = Array.from({ length: n }, (_, i) => generate(rand, i === n - 1));
      const raw = Buffer.concat(gen.map((g) => g.raw));
      const eof = gen[n - 1]!.eof;
      const pieces = randomSplit(rand, raw, 12);
      const out = run(
        pieces,
        gen.map((g) => g.method),
        eof,
      );
      const label = `sequence ${sequences}: ${JSON.stringify(raw.toString("latin1").slice(0, 300))}`;
      assert.equal(out.error, null, `${label}: ${out.error?.message}`);
      assert.equal(out.responses.length, n, label);
      out.responses.forEach((r, i) => {
        const e = gen[i]!.expected;
        assert.deepStrictEqual(
          {
            status: r.head.status,
            statusText: r.head.statusText,
            headers: { ...parseHeaders(r.head.rawHeaders) },
            body: r.body.toString("latin1"),
            contentLength: r.head.contentLength,
            chunked: r.head.chunked,
            close: r.head.close,
          },
          e,
          `${label} response ${i}`,
        );
      });
      sequences++;
      responses += n;
    }
    assert.ok(sequences >= 1000, `only ${sequences} sequences`);
    assert.ok(responses > sequences, "pipelined sequences were generated");
  });
});
