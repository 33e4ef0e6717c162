/**
 * Incremental HTTP/1.1 RESPONSE parser for the keep-alive fast path (one raw net.Socket per connection).
 *
 * Micro-benchmark (quick local script, not committed; Node 20 on the 2-core dev machine, which was shared
 * with other work, so best of 5 runs of 3 M responses; the handler does nothing):
 * - a typical 146-byte response ("HTTP/1.1 200 OK", Content-Type, Date, Connection: keep-alive,
 *   Content-Length, 20-byte body) fed whole: ~2.2 M responses/s (~450 ns each);
 * - a 150-byte chunked response (3 chunks) fed whole: ~1.8 M responses/s (~550 ns);
 * - the 146-byte response in 3 pieces (40 + 60 + 46 bytes): ~1.1 M responses/s (~0.9 µs);
 * - the same fed byte by byte: ~0.24 M responses/s (~4 µs).
 * Costs per response: one latin1 string for the header block (plus statusText unless it is "OK"),
 * the head object and one Buffer view per onBody; no copy unless a head or trailers span two inputs.
 *
 * Framing follows RFC 9112 and, where the RFC leaves room, what undici (llhttp, strict mode) does,
 * checked by test/parser-differential.test.ts:
 * - CRLF line endings only (bare LF and bare CR are errors, as in undici); obs-fold is an error.
 * - Status line "HTTP/1.0" or "HTTP/1.1", SP, three digits 100-999, then SP reason or nothing.
 * - Header names are tokens, no whitespace before ':'; values may not hold control characters
 *   other than HTAB (obs-text 0x80-0xFF is allowed and kept as latin1).
 * - Interim 1xx responses are skipped (101 is an error: upgrades are not supported here).
 * - No body for HEAD, 1xx, 204, 304. Transfer-Encoding whose last coding is "chunked" frames the body
 *   in chunks (and overrides Content-Length: the connection is then marked close, RFC 9112 §6.3);
 *   any other Transfer-Encoding, or neither header, means read until close.
 * - Content-Length: digits only (OWS around allowed), identical duplicates tolerated, anything else
 *   (empty, sign, list, conflicting duplicates, > 2^53-1) is an error.
 * - Stray CR/LF bytes between messages are ignored (as llhttp does); any other byte that arrives when
 *   no response is expected is an error.
 */

export interface ResponseHead {
  status: number;
  statusText: string;
  /** Raw header block as latin1 text: the lines after the status line, each "Name: value", joined by "\r\n" (no final CRLF). Parsed lazily by parseHeaders(). */
  rawHeaders: string;
  /** -1 when absent. Also -1 when Transfer-Encoding frames the body (it overrides Content-Length). For HEAD, 204 and 304 it is the header's value, but no body follows. */
  contentLength: number;
  /** The body is chunk-framed (never true when no body follows). */
  chunked: boolean;
  /** Server said Connection: close, or HTTP/1.0 without keep-alive: the socket must not be reused after this response. Also true when the body is read until close, and for suspect framing (Transfer-Encoding with Content-Length, or with HTTP/1.0). */
  close: boolean;
  /** A Set-Cookie header is present (so the client knows whether to parse headers at all). */
  setCookie: boolean;
}

export interface ParserHandler {
  /** Final (non-1xx) response head. Interim 1xx responses (100, 102, 103) are skipped silently; 101 is an error ("upgrade not supported"). */
  onHead(head: ResponseHead): void;
  /** A body chunk (a subarray of the input; copy it if you keep it past the call). */
  onBody(chunk: Buffer): void;
  /** The message is complete. The parser is then ready for the next response on the same connection. */
  onComplete(): void;
}

/** Invalid or unexpected bytes from the server: the connection must be discarded. */
export class ParseError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "ParseError";
    this.code = code;
  }
}

const PROTOCOL = "Response does not match the HTTP/1.1 protocol";

function protocolError(code: string, reason: string): ParseError {
  return new ParseError(code, `${PROTOCOL} (${reason})`);
}

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;
const SEMI = 59;
const COMMA = 44;
const DQUOTE = 34;
const BACKSLASH = 92;
const EQUALS = 61;
const HTTP_SLASH = Buffer.from("HTTP/", "latin1");

const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
/** Largest chunk size that can take one more hex digit and stay a safe integer. */
const CHUNK_SIZE_LIMIT = Math.floor(Number.MAX_SAFE_INTEGER / 16);

/** tchar (RFC 9110 §5.6.2). */
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN[c.charCodeAt(0)] = 1;
}
/** field-vchar / SP / HTAB / obs-text: everything but CTLs (HTAB excepted) and DEL. */
const FIELD_VALUE = new Uint8Array(256);
for (let c = 0; c < 256; c++) FIELD_VALUE[c] = c === HTAB || (c >= 0x20 && c !== 0x7f) ? 1 : 0;
/** qdtext (RFC 9110 §5.6.4) for quoted chunk-extension values. */
const QDTEXT = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  QDTEXT[c] =
    c === HTAB || c === SP || c === 0x21 || (c >= 0x23 && c <= 0x7e && c !== BACKSLASH) || c >= 0x80 ? 1 : 0;
}
/** Hex digit values, -1 for anything else. */
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[65 + c] = 10 + c;
  HEX[97 + c] = 10 + c;
}

/** Checks the first n (<= 8) bytes of a status line against "HTTP/1.0" / "HTTP/1.1". */
function checkVersion(buf: Buffer, start: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const c = buf[start + i];
    if (i < 5) {
      if (c !== HTTP_SLASH[i])
        throw protocolError("HPE_INVALID_CONSTANT", "Expected HTTP/ at the start of the status line");
    } else if (i === 5 ? c !== 49 : i === 6 ? c !== 46 : c !== 48 && c !== 49) {
      throw protocolError("HPE_INVALID_VERSION", "Invalid HTTP version (only HTTP/1.0 and HTTP/1.1)");
    }
  }
}

const NAME_CONTENT_LENGTH = Buffer.from("content-length", "latin1");
const NAME_TRANSFER_ENCODING = Buffer.from("transfer-encoding", "latin1");
const NAME_CONNECTION = Buffer.from("connection", "latin1");
const NAME_SET_COOKIE = Buffer.from("set-cookie", "latin1");
const TOKEN_CHUNKED = Buffer.from("chunked", "latin1");
const TOKEN_CLOSE = Buffer.from("close", "latin1");
const TOKEN_KEEP_ALIVE = Buffer.from("keep-alive", "latin1");

/** Case-insensitive compare of buf[at, at+lower.length) with an all-lower-case ASCII token. */
function equalsLower(buf: Buffer, at: number, lower: Buffer): boolean {
  const n = lower.length;
  for (let i = 0; i < n; i++) {
    // Only letters and '-' occur in the names compared; | 0x20 folds A-Z onto a-z and keeps '-'.
    if ((buf[at + i]! | 0x20) !== lower[i]) return false;
  }
  return true;
}

/** Buffer's own latin1 decoder: what toString("latin1", ...) ends up calling, minus its argument checks. */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (start: number, end: number) => string })
  .latin1Slice;
const latin1: (buf: Buffer, start: number, end: number) => string =
  typeof latin1Slice === "function"
    ? (buf, start, end) => latin1Slice.call(buf, start, end)
    : (buf, start, end) => buf.toString("latin1", start, end);

/** Parser states. */
const S_IDLE = 0; // between messages (skipping stray CR/LF)
const S_HEAD = 1; // collecting a status line + header block
const S_BODY_CL = 2;
const S_BODY_EOF = 3;
const S_CHUNK_SIZE_START = 4;
const S_CHUNK_SIZE = 5;
const S_CHUNK_EXT = 6;
const S_CHUNK_SIZE_LF = 7;
const S_CHUNK_DATA = 8;
const S_CHUNK_DATA_CR = 9;
const S_CHUNK_DATA_LF = 10;
const S_TRAILERS = 11;
const S_DEAD = 12;

/** Chunk-extension sub-states: `;name[=token|"quoted"]` repeated, no whitespace (as llhttp). */
const E_NAME_START = 0;
const E_NAME = 1;
const E_VALUE_START = 2;
const E_VALUE = 3;
const E_QUOTED = 4;
const E_QUOTED_ESCAPE = 5;
const E_QUOTED_END = 6;

/**
 * The last final head this thread walked straight in its input, and what walking it found. A
 * server answers a load test with the same head over and over (nginx's changes once a second, with
 * its Date): a head whose bytes equal these is known valid, and one native compare stands in
 * for walking it byte by byte. Per thread, not per connection: no memory per connection.
 */
const MEMO_MAX = 2048;
const memo = {
  bytes: Buffer.alloc(0),
  len: 0,
  status: 0,
  minor: 1,
  statusText: "",
  rawHeaders: "",
  contentLength: -1,
  transferEncoding: false,
  chunked: false,
  close: false,
  keepAlive: false,
  setCookie: false,
};

export class ResponseParser {
  private readonly handler: ParserHandler;
  private readonly maxHeaderBytes: number;
  private state = S_IDLE;
  /** Ring of expected responses: 1 = answer to HEAD (no body), 0 = anything else. */
  private queue = new Uint8Array(8);
  private queueStart = 0;
  private queueCount = 0;
  /** Bumped by reset(): a callback that resets the parser stops the execute() that called it. */
  private generation = 0;
  /** A byte of the current response (or of a 1xx before it) has arrived. */
  private started = false;
  private error: ParseError | null = null;
  /** Holds a head or trailer section that arrives in pieces. */
  private scratch: Buffer = Buffer.allocUnsafe(0);
  private scratchLen = 0;
  /** Walking a section: where the next line to validate starts; whether the status line is still to come. */
  private resume = 0;
  private statusPending = false;
  /** Bytes left in the Content-Length body or the current chunk; the chunk size being read. */
  private remaining = 0;
  private extState = E_NAME_START;
  // The status line and framing headers of the head being walked.
  private sStatus = 0;
  private sMinor = 1;
  private sReasonStart = 0;
  private sReasonEnd = 0;
  private sHeadersStart = 0;
  private hContentLength = -1;
  private hTransferEncoding = false;
  private hChunked = false;
  private hClose = false;
  private hKeepAlive = false;
  private hSetCookie = false;

  constructor(handler: ParserHandler, options?: { maxHeaderBytes?: number }) {
    this.handler = handler;
    const max = options?.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    if (!Number.isInteger(max) || max < 16) {
      throw new RangeError(`maxHeaderBytes must be an integer >= 16, got ${max}`);
    }
    this.maxHeaderBytes = max;
  }

  /** True between expect() and onComplete(). */
  get busy(): boolean {
    return this.queueCount > 0;
  }

  /** Call before each request is written: the response to a HEAD has no body. Several calls queue up (pipelining). */
  expect(method: string): void {
    const cap = this.queue.length;
    if (this.queueCount === cap) {
      const bigger = new Uint8Array(cap * 2);
      for (let i = 0; i < this.queueCount; i++) bigger[i] = this.queue[(this.queueStart + i) % cap]!;
      this.queue = bigger;
      this.queueStart = 0;
    }
    const isHead = method === "HEAD" || (method.length === 4 && method.toUpperCase() === "HEAD") ? 1 : 0;
    this.queue[(this.queueStart + this.queueCount) % this.queue.length] = isHead;
    this.queueCount++;
  }

  /**
   * Feeds data[0, end). Throws ParseError on invalid input (then the connection must be
   * discarded). `end` lets a caller that reads into one reused buffer skip a view per read.
   */
  execute(data: Buffer, end: number = data.length): void {
    if (this.state === S_DEAD) throw this.deadError();
    try {
      this.run(data, end);
    } catch (err) {
      this.state = S_DEAD;
      this.error = err instanceof ParseError ? err : null;
      throw err;
    }
  }

  /** The socket ended. Completes a read-until-close body; throws ParseError if mid-message; no-op when idle. */
  finish(): void {
    const state = this.state;
    if (state === S_DEAD) return;
    if (state === S_BODY_EOF) {
      this.complete();
      return;
    }
    if (this.queueCount === 0 && state === S_IDLE) return;
    const message = "connection closed before the response was complete";
    this.state = S_DEAD;
    this.error =
      state === S_IDLE && !this.started
        ? new ParseError("HPE_CLOSED_BEFORE_RESPONSE", `${message} (no response bytes were received)`)
        : new ParseError("HPE_INVALID_EOF_STATE", message);
    throw this.error;
  }

  /** Forgets everything: expected responses, partial input, errors. */
  reset(): void {
    this.state = S_IDLE;
    this.queueStart = 0;
    this.queueCount = 0;
    this.generation++;
    this.started = false;
    this.error = null;
    this.scratchLen = 0;
    this.remaining = 0;
  }

  private deadError(): ParseError {
    return this.error ?? new ParseError("HPE_PARSER_DEAD", "parser used after an error; call reset()");
  }

  private run(data: Buffer, len: number): void {
    const generation = this.generation;
    let pos = 0;
    while (pos < len) {
      switch (this.state) {
        case S_IDLE: {
          const c = data[pos]!;
          if (c === CR || c === LF) {
            pos++;
            break;
          }
          if (this.queueCount === 0) {
            throw protocolError("HPE_UNEXPECTED_DATA", "data received while no response was expected");
          }
          this.state = S_HEAD;
          this.started = true;
          this.scratchLen = 0;
          break;
        }
        case S_HEAD: {
          let next: number;
          if (this.scratchLen === 0) {
            const m = memo.len;
            if (
              m > 0 &&
              m <= len - pos &&
              m < this.maxHeaderBytes &&
              data[pos + m - 1] === LF &&
              data.compare(memo.bytes, 0, m, pos, pos + m) === 0
            ) {
              next = pos + m;
              this.emitRemembered();
            } else {
              // Fast path: walk the head straight in the input, no copy.
              this.resume = pos;
              this.statusPending = true;
              const end = this.headerLines(data, Math.min(len, pos + this.maxHeaderBytes), true);
              if (end === -1) {
                this.stash(data, pos, len, true);
                return;
              }
              next = end + 2;
              this.emitHead(data, end, pos);
            }
          } else {
            next = this.more(data, pos, len, true);
            if (next === -1) return;
            this.emitHead(this.scratch, this.resume);
          }
          if (this.generation !== generation) return;
          pos = next;
          break;
        }
        case S_BODY_CL: {
          const avail = len - pos;
          const remaining = this.remaining;
          if (avail < remaining) {
            this.remaining = remaining - avail;
            this.handler.onBody(data.subarray(pos, len));
            return;
          }
          const end = pos + remaining;
          this.handler.onBody(data.subarray(pos, end));
          if (this.generation !== generation) return;
          pos = end;
          this.complete();
          if (this.generation !== generation) return;
          break;
        }
        case S_BODY_EOF:
          this.handler.onBody(pos === 0 && len === data.length ? data : data.subarray(pos, len));
          return;
        case S_CHUNK_SIZE_START:
        case S_CHUNK_SIZE: {
          let size = this.remaining;
          let c = 0;
          let digit = 0;
          while (pos < len && (digit = HEX[(c = data[pos]!)]!) >= 0) {
            if (size > CHUNK_SIZE_LIMIT) throw protocolError("HPE_INVALID_CHUNK_SIZE", "Chunk size overflow");
            size = size * 16 + digit;
            pos++;
            this.state = S_CHUNK_SIZE;
          }
          this.remaining = size;
          if (pos === len) return;
          if (this.state === S_CHUNK_SIZE_START) {
            throw protocolError("HPE_INVALID_CHUNK_SIZE", "Invalid character in chunk size");
          }
          pos++;
          if (c === CR) this.state = S_CHUNK_SIZE_LF;
          else if (c === SEMI) {
            this.state = S_CHUNK_EXT;
            this.extState = E_NAME_START;
          } else throw protocolError("HPE_INVALID_CHUNK_SIZE", "Invalid character in chunk size");
          break;
        }
        case S_CHUNK_EXT:
          pos = this.chunkExtension(data, pos, len);
          break;
        case S_CHUNK_SIZE_LF:
          if (data[pos] !== LF) throw protocolError("HPE_STRICT", "Expected LF after chunk size");
          pos++;
          if (this.remaining === 0) {
            this.state = S_TRAILERS;
            this.scratchLen = 0;
          } else {
            this.state = S_CHUNK_DATA;
          }
          break;
        case S_CHUNK_DATA: {
          const avail = len - pos;
          const remaining = this.remaining;
          if (avail <= remaining) {
            this.remaining = remaining - avail;
            if (avail === remaining) this.state = S_CHUNK_DATA_CR;
            this.handler.onBody(data.subarray(pos, len));
            return;
          }
          const end = pos + remaining;
          this.remaining = 0;
          this.handler.onBody(data.subarray(pos, end));
          if (this.generation !== generation) return;
          pos = end;
          // The common case: the chunk's CRLF follows right away.
          if (pos + 1 < len && data[pos] === CR && data[pos + 1] === LF) {
            pos += 2;
            this.state = S_CHUNK_SIZE_START;
          } else {
            this.state = S_CHUNK_DATA_CR;
          }
          break;
        }
        case S_CHUNK_DATA_CR:
          if (data[pos] !== CR) throw protocolError("HPE_STRICT", "Expected CR after chunk data");
          pos++;
          this.state = S_CHUNK_DATA_LF;
          break;
        case S_CHUNK_DATA_LF:
          if (data[pos] !== LF) throw protocolError("HPE_STRICT", "Expected LF after chunk data");
          pos++;
          this.state = S_CHUNK_SIZE_START;
          break;
        case S_TRAILERS: {
          if (this.scratchLen === 0) {
            // The common case: no trailers, the final CRLF is here whole.
            if (data[pos] === CR && pos + 1 < len && data[pos + 1] === LF) {
              pos += 2;
            } else {
              this.resume = pos;
              this.statusPending = false;
              const end = this.headerLines(data, Math.min(len, pos + this.maxHeaderBytes), false);
              if (end === -1) {
                this.stash(data, pos, len, false);
                return;
              }
              pos = end + 2;
            }
          } else {
            const next = this.more(data, pos, len, false);
            if (next === -1) return;
            pos = next;
          }
          this.complete();
          if (this.generation !== generation) return;
          break;
        }
        default:
          throw this.deadError();
      }
    }
  }

  private complete(): void {
    this.state = S_IDLE;
    this.started = false;
    this.queueStart = (this.queueStart + 1) % this.queue.length;
    this.queueCount--;
    this.handler.onComplete();
  }

  private ensureScratch(size: number): void {
    if (this.scratch.length >= size) return;
    let cap = Math.max(256, this.scratch.length * 2);
    while (cap < size) cap *= 2;
    const bigger = Buffer.allocUnsafe(Math.min(cap, Math.max(size, this.maxHeaderBytes)));
    this.scratch.copy(bigger, 0, 0, this.scratchLen);
    this.scratch = bigger;
  }

  private overflow(): ParseError {
    const what = this.state === S_TRAILERS ? "trailer section" : "response head";
    return protocolError(
      "HPE_HEADER_OVERFLOW",
      `Header overflow: the ${what} exceeds maxHeaderBytes (${this.maxHeaderBytes})`,
    );
  }

  /** Keeps the start of a section (head or trailers) that did not end in this input; it is walked again from scratch. */
  private stash(data: Buffer, pos: number, len: number, head: boolean): void {
    const n = len - pos;
    if (n >= this.maxHeaderBytes) throw this.overflow();
    this.ensureScratch(n);
    data.copy(this.scratch, 0, pos, pos + n);
    this.scratchLen = n;
    this.resume = 0;
    this.statusPending = head;
  }

  /**
   * Adds input to a held section and walks on from the last complete line. Returns the offset in data just
   * past the section (which is then scratch[0, resume) + its empty line), or -1 when all of data was kept.
   */
  private more(data: Buffer, pos: number, len: number, head: boolean): number {
    const max = this.maxHeaderBytes;
    const held = this.scratchLen;
    const n = Math.min(len - pos, max - held);
    const total = held + n;
    this.ensureScratch(total);
    const s = this.scratch;
    // Walk again only when a line can have ended (or the status line is too short to judge yet): the
    // incomplete last line is walked from its start, so this keeps a head fed in small pieces linear.
    let walk = this.statusPending && held < 8;
    if (n <= 16) {
      // Small pieces (a head trickling in): a JS copy and scan beat native calls.
      for (let i = 0; i < n; i++) {
        const c = data[pos + i]!;
        s[held + i] = c;
        if (c === CR || c === LF) walk = true;
      }
    } else {
      data.copy(s, held, pos, pos + n);
      if (!walk) {
        const cr = data.indexOf(CR, pos);
        walk = cr !== -1 && cr < pos + n;
        if (!walk) {
          const lf = data.indexOf(LF, pos);
          walk = lf !== -1 && lf < pos + n;
        }
      }
    }
    if (walk) {
      const end = this.headerLines(s, total, head);
      if (end !== -1) {
        this.scratchLen = 0;
        this.resume = end;
        return pos + (end + 2 - held);
      }
    }
    if (total >= max) throw this.overflow();
    this.scratchLen = total;
    return -1;
  }

  /**
   * Parses the status line at buf[start]. Returns where the header lines start, or -1 when the line does not
   * end before `limit` (after rejecting what already cannot become a status line).
   */
  private statusLine(buf: Buffer, start: number, limit: number): number {
    const lineEnd = buf.indexOf(CR, start);
    if (lineEnd === -1 || lineEnd + 1 >= limit) {
      checkVersion(buf, start, Math.min(limit - start, 8));
      const lf = buf.indexOf(LF, start);
      if (lf !== -1 && lf < limit)
        throw protocolError("HPE_STRICT", "Missing expected CR after response line");
      return -1;
    }
    const lf = buf.indexOf(LF, start);
    if (lf !== -1 && lf < lineEnd)
      throw protocolError("HPE_STRICT", "Missing expected CR after response line");
    checkVersion(buf, start, Math.min(lineEnd - start, 8));
    if (lineEnd < start + 12) throw protocolError("HPE_INVALID_STATUS", "Invalid status code");
    const minor = buf[start + 7]! - 48;
    if (buf[start + 8] !== SP) throw protocolError("HPE_INVALID_VERSION", "Expected space after version");
    const d0 = buf[start + 9]! - 48;
    const d1 = buf[start + 10]! - 48;
    const d2 = buf[start + 11]! - 48;
    if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) {
      throw protocolError("HPE_INVALID_STATUS", "Invalid status code");
    }
    if (buf[lineEnd + 1] !== LF) throw protocolError("HPE_STRICT", "Expected LF after CR in status line");
    let rs = lineEnd;
    if (lineEnd > start + 12) {
      if (buf[start + 12] !== SP) throw protocolError("HPE_INVALID_STATUS", "Invalid response status");
      rs = start + 13;
    }
    const status = d0 * 100 + d1 * 10 + d2;
    if (status === 101)
      throw new ParseError("HPE_UPGRADE", "upgrade not supported (101 Switching Protocols)");
    this.sStatus = status;
    this.sMinor = minor;
    this.sReasonStart = rs;
    this.sReasonEnd = lineEnd;
    this.sHeadersStart = lineEnd + 2;
    this.hContentLength = -1;
    this.hTransferEncoding = false;
    this.hChunked = false;
    this.hClose = false;
    this.hKeepAlive = false;
    this.hSetCookie = false;
    return lineEnd + 2;
  }

  /**
   * Validates a section's lines from this.resume (the status line first when statusPending) and, for heads,
   * records the framing headers. Returns where the empty line that ends the section starts, or -1 when it does
   * not end before `limit` (this.resume is then the start of the incomplete line).
   */
  private headerLines(buf: Buffer, limit: number, head: boolean): number {
    let p = this.resume;
    if (this.statusPending) {
      p = this.statusLine(buf, p, limit);
      if (p === -1) return -1;
      this.statusPending = false;
    }
    // Every read is below `limit` (<= buf.length): reading past a typed array's end would switch V8's
    // loads here to a slower out-of-bounds-tolerant mode for good.
    let lineStart = p;
    lines: for (;;) {
      lineStart = p;
      if (p + 1 >= limit) break;
      let c = buf[p]!;
      if (c === CR) {
        if (buf[p + 1] !== LF) throw protocolError("HPE_STRICT", "Missing expected LF after header line");
        return p;
      }
      while (TOKEN[c] === 1) {
        if (++p === limit) break lines;
        c = buf[p]!;
      }
      if (c !== COLON || p === lineStart) {
        throw protocolError(
          "HPE_INVALID_HEADER_TOKEN",
          c === SP || c === HTAB ? "Unexpected whitespace in header line" : "Invalid header token",
        );
      }
      const nameLen = p - lineStart;
      do {
        if (++p === limit) break lines;
        c = buf[p]!;
      } while (c === SP || c === HTAB);
      const valueStart = p;
      while (FIELD_VALUE[c] === 1) {
        if (++p === limit) break lines;
        c = buf[p]!;
      }
      if (c !== CR) throw protocolError("HPE_INVALID_HEADER_TOKEN", "Invalid header value char");
      if (p + 1 >= limit) break;
      if (buf[p + 1] !== LF) throw protocolError("HPE_STRICT", "Missing expected LF after header value");
      if (head && (nameLen === 14 || nameLen === 17 || nameLen === 10)) {
        let valueEnd = p;
        while (valueEnd > valueStart && ((c = buf[valueEnd - 1]!) === SP || c === HTAB)) valueEnd--;
        this.framingHeader(buf, lineStart, nameLen, valueStart, valueEnd);
      }
      p += 2;
    }
    this.resume = lineStart;
    return -1;
  }

  /** The head in the input equals the memo's: take what walking it found. */
  private emitRemembered(): void {
    this.sStatus = memo.status;
    this.sMinor = memo.minor;
    this.hContentLength = memo.contentLength;
    this.hTransferEncoding = memo.transferEncoding;
    this.hChunked = memo.chunked;
    this.hClose = memo.close;
    this.hKeepAlive = memo.keepAlive;
    this.hSetCookie = memo.setCookie;
    this.finishHead(memo.statusText, memo.rawHeaders);
  }

  /**
   * A whole head was walked (end = start of its empty line): skip a 1xx, or emit it and set up
   * the body. `start`, when the head was walked straight in `buf` from there, lets it be memoized.
   */
  private emitHead(buf: Buffer, end: number, start = -1): void {
    if (this.sStatus < 200) {
      this.state = S_IDLE; // interim response: the final head follows
      return;
    }
    const rs = this.sReasonStart;
    const re = this.sReasonEnd;
    const hs = this.sHeadersStart;
    const statusText =
      rs === re ? "" : re - rs === 2 && buf[rs] === 79 && buf[rs + 1] === 75 ? "OK" : latin1(buf, rs, re);
    const rawHeaders = hs < end ? latin1(buf, hs, end - 2) : "";
    const n = end + 2 - start;
    if (start >= 0 && n <= MEMO_MAX) {
      if (memo.bytes.length < n) memo.bytes = Buffer.allocUnsafe(MEMO_MAX);
      buf.copy(memo.bytes, 0, start, end + 2);
      memo.len = n;
      memo.status = this.sStatus;
      memo.minor = this.sMinor;
      memo.statusText = statusText;
      memo.rawHeaders = rawHeaders;
      memo.contentLength = this.hContentLength;
      memo.transferEncoding = this.hTransferEncoding;
      memo.chunked = this.hChunked;
      memo.close = this.hClose;
      memo.keepAlive = this.hKeepAlive;
      memo.setCookie = this.hSetCookie;
    }
    this.finishHead(statusText, rawHeaders);
  }

  /** Emits a final head whose status line and framing headers are in the s/h fields. */
  private finishHead(statusText: string, rawHeaders: string): void {
    const status = this.sStatus;
    const noBody = this.queue[this.queueStart] === 1 || status === 204 || status === 304;
    let contentLength = this.hContentLength;
    let chunked = false;
    let close = this.hClose || (this.sMinor === 0 && !this.hKeepAlive);
    let next: number;
    if (noBody) {
      next = S_IDLE;
    } else if (this.hTransferEncoding) {
      // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, and a message with both (or an
      // HTTP/1.0 message with Transfer-Encoding) has suspect framing: don't reuse the connection.
      if (contentLength !== -1 || this.sMinor === 0) close = true;
      contentLength = -1;
      if (this.hChunked) {
        chunked = true;
        next = S_CHUNK_SIZE_START;
      } else {
        close = true;
        next = S_BODY_EOF;
      }
    } else if (contentLength !== -1) {
      next = contentLength === 0 ? S_IDLE : S_BODY_CL;
    } else {
      close = true;
      next = S_BODY_EOF;
    }
    this.state = next;
    this.remaining = next === S_BODY_CL ? contentLength : 0;
    const generation = this.generation;
    this.handler.onHead({
      status,
      statusText,
      rawHeaders,
      contentLength,
      chunked,
      close,
      setCookie: this.hSetCookie,
    });
    if (next === S_IDLE && this.generation === generation) this.complete();
  }

  private framingHeader(buf: Buffer, name: number, nameLen: number, vs: number, ve: number): void {
    if (nameLen === 14) {
      if (!equalsLower(buf, name, NAME_CONTENT_LENGTH)) return;
      if (vs === ve) throw protocolError("HPE_INVALID_CONTENT_LENGTH", "Empty Content-Length");
      let value = 0;
      for (let i = vs; i < ve; i++) {
        const d = buf[i]! - 48;
        if (d < 0 || d > 9)
          throw protocolError("HPE_INVALID_CONTENT_LENGTH", "Invalid character in Content-Length");
        value = value * 10 + d;
      }
      if (value > Number.MAX_SAFE_INTEGER)
        throw protocolError("HPE_INVALID_CONTENT_LENGTH", "Content-Length overflow");
      if (this.hContentLength !== -1 && this.hContentLength !== value) {
        throw protocolError("HPE_UNEXPECTED_CONTENT_LENGTH", "Conflicting duplicate Content-Length");
      }
      this.hContentLength = value;
    } else if (nameLen === 17) {
      if (!equalsLower(buf, name, NAME_TRANSFER_ENCODING)) return;
      // Only the last coding of the last Transfer-Encoding field decides (as llhttp).
      this.hTransferEncoding = true;
      let ts = ve;
      while (ts > vs && buf[ts - 1] !== COMMA) ts--;
      while (ts < ve && (buf[ts] === SP || buf[ts] === HTAB)) ts++;
      this.hChunked = ve - ts === 7 && equalsLower(buf, ts, TOKEN_CHUNKED);
    } else if (equalsLower(buf, name, NAME_SET_COOKIE)) {
      this.hSetCookie = true;
    } else if (equalsLower(buf, name, NAME_CONNECTION)) {
      let ts = vs;
      while (ts < ve) {
        let te = ts;
        while (te < ve && buf[te] !== COMMA) te++;
        let a = ts;
        let b = te;
        while (a < b && (buf[a] === SP || buf[a] === HTAB)) a++;
        while (b > a && (buf[b - 1] === SP || buf[b - 1] === HTAB)) b--;
        if (b - a === 5 && equalsLower(buf, a, TOKEN_CLOSE)) this.hClose = true;
        else if (b - a === 10 && equalsLower(buf, a, TOKEN_KEEP_ALIVE)) this.hKeepAlive = true;
        ts = te + 1;
      }
    }
  }

  /** Validates a chunk extension byte by byte up to the CR that ends the chunk-size line. */
  private chunkExtension(data: Buffer, pos: number, len: number): number {
    let st = this.extState;
    while (pos < len) {
      const c = data[pos++]!;
      switch (st) {
        case E_NAME_START:
          if (TOKEN[c] !== 1)
            throw protocolError("HPE_INVALID_CHUNK_EXTENSION", "Invalid character in chunk extensions");
          st = E_NAME;
          continue;
        case E_NAME:
          if (TOKEN[c] === 1) continue;
          if (c === EQUALS) st = E_VALUE_START;
          else if (c === SEMI) st = E_NAME_START;
          else if (c === CR) {
            this.state = S_CHUNK_SIZE_LF;
            return pos;
          } else throw protocolError("HPE_INVALID_CHUNK_EXTENSION", "Invalid character in chunk extensions");
          continue;
        case E_VALUE_START:
          if (TOKEN[c] === 1) st = E_VALUE;
          else if (c === DQUOTE) st = E_QUOTED;
          else
            throw protocolError("HPE_INVALID_CHUNK_EXTENSION", "Invalid character in chunk extensions value");
          continue;
        case E_VALUE:
          if (TOKEN[c] === 1) continue;
          if (c === SEMI) st = E_NAME_START;
          else if (c === CR) {
            this.state = S_CHUNK_SIZE_LF;
            return pos;
          } else
            throw protocolError("HPE_INVALID_CHUNK_EXTENSION", "Invalid character in chunk extensions value");
          continue;
        case E_QUOTED:
          if (c === DQUOTE) st = E_QUOTED_END;
          else if (c === BACKSLASH) st = E_QUOTED_ESCAPE;
          else if (QDTEXT[c] !== 1) {
            throw protocolError(
              "HPE_INVALID_CHUNK_EXTENSION",
              "Invalid character in chunk extensions quoted value",
            );
          }
          continue;
        case E_QUOTED_ESCAPE:
          if (c !== HTAB && (c < 0x20 || c === 0x7f)) {
            throw protocolError("HPE_INVALID_CHUNK_EXTENSION", "Invalid quoted-pair in chunk extensions");
          }
          st = E_QUOTED;
          continue;
        default: // E_QUOTED_END
          if (c === SEMI) st = E_NAME_START;
          else if (c === CR) {
            this.state = S_CHUNK_SIZE_LF;
            return pos;
          } else
            throw protocolError(
              "HPE_INVALID_CHUNK_EXTENSION",
              "Invalid character after chunk extensions quoted value",
            );
      }
    }
    this.extState = st;
    return pos;
  }
}

/**
 * Lazily turns rawHeaders into a Node-style IncomingHttpHeaders object: lower-case names; set-cookie
 * always an array; other duplicates joined with ", ". Values keep the bytes after the leading
 * whitespace as sent (trailing whitespace included, as undici keeps it).
 */
export function parseHeaders(raw: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const n = raw.length;
  let p = 0;
  while (p < n) {
    let e = raw.indexOf("\r\n", p);
    if (e === -1) e = n;
    const colon = raw.indexOf(":", p);
    if (colon !== -1 && colon < e) {
      const name = raw.slice(p, colon).toLowerCase();
      let vs = colon + 1;
      let c: number;
      while (vs < e && ((c = raw.charCodeAt(vs)) === SP || c === HTAB)) vs++;
      const value = raw.slice(vs, e);
      const prev = Object.hasOwn(out, name) ? out[name] : undefined;
      if (name === "set-cookie") {
        if (prev === undefined) out[name] = [value];
        else (prev as string[]).push(value);
      } else if (prev === undefined) {
        if (name === "__proto__") {
          Object.defineProperty(out, name, { value, enumerable: true, configurable: true, writable: true });
        } else {
          out[name] = value;
        }
      } else if (name === "__proto__") {
        Object.defineProperty(out, name, {
          value: `${prev}, ${value}`,
          enumerable: true,
          configurable: true,
          writable: true,
        });
      } else {
        out[name] = `${prev}, ${value}`;
      }
    }
    p = e + 2;
  }
  return out;
}
