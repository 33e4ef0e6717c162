import assert from "node:assert/strict";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Client } from "undici";
import {
  ParseError,
  type ParserHandler,
  parseHeaders,
  type ResponseHead,
  ResponseParser,
} from "../src/protocols/http/fast/parser.js";
import { rng } from "./helpers.js";

/**
 * Differential test of the fast-path response parser against undici (and, where undici's own JS layer
 * has a quirk the parser deliberately does not copy, node:http): the same raw bytes are served from a
 * raw TCP server on 127.0.0.1 to the reference client and fed to ResponseParser split at every byte.
 */

/** Concatenates latin1 strings and buffers into the exact bytes to send. */
function bytes(...parts: (string | Buffer)[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : p)));
}

function chunk(data: string | Buffer, ext = ""): Buffer {
  const b = typeof data === "string" ? Buffer.from(data, "latin1") : data;
  return bytes(`${b.length.toString(16)}${ext}\r\n`, b, "\r\n");
}

const allBytes = Buffer.from(Array.from({ length: 1024 }, (_, i) => (i * 7 + (i >> 8)) & 0xff));
const manyHeaders = Array.from({ length: 160 }, (_, i) => `X-Filler-${i}: ${"v".repeat(40)}-${i}\r\n`).join(
  "",
);

interface Case {
  name: string;
  raw: Buffer;
  /** Request method (HEAD responses have no body). */
  method?: "GET" | "HEAD";
  /** The server ends the connection after writing (read-until-close bodies, truncated responses). */
  closeAfter?: boolean;
  /** Expected ResponseHead.close. */
  close: boolean;
  /** Expected ResponseHead.chunked (default false). */
  chunked?: boolean;
  /** Expected ResponseHead.contentLength (default: not checked). */
  contentLength?: number;
  /** Reference client; node:http where undici's JS layer rejects a valid response (see the case). */
  reference?: "undici" | "node";
}

const CORPUS: Case[] = [
  {
    name: "content-length",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"),
    close: false,
    contentLength: 13,
  },
  {
    name: "content-length zero",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    close: false,
    contentLength: 0,
  },
  {
    name: "chunked, several chunks",
    raw: bytes(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n",
      chunk("Hello"),
      chunk(", "),
      chunk("world"),
      chunk("!"),
      "0\r\n\r\n",
    ),
    close: false,
    chunked: true,
    contentLength: -1,
  },
  {
    name: "chunked with extensions (token, quoted, escaped, several)",
    raw: bytes(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      chunk("abc", ";name=value"),
      chunk("defg", ';q="a b;c"'),
      chunk("hij", ';e="x\\"y";flag;k=v'),
      "0;last=1\r\n\r\n",
    ),
    close: false,
    chunked: true,
  },
  {
    name: "chunked with trailers",
    raw: bytes(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum, X-Other\r\n\r\n",
      chunk("payload"),
      "0\r\nX-Checksum: abc123\r\nX-Other: 1\r\n\r\n",
    ),
    close: false,
    chunked: true,
  },
  {
    name: "chunked, hex sizes upper/lower case with leading zeros",
    raw: bytes(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      "000A\r\n0123456789\r\n",
      "1f\r\n",
      "x".repeat(31),
      "\r\n0000\r\n\r\n",
    ),
    close: false,
    chunked: true,
  },
  {
    name: "chunked, empty body",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    close: false,
    chunked: true,
  },
  {
    name: "Transfer-Encoding value in upper case",
    raw: bytes("HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: CHUNKED\r\n\r\n", chunk("shout"), "0\r\n\r\n"),
    close: false,
    chunked: true,
  },
  {
    name: "Transfer-Encoding: gzip, chunked (chunked is last: chunk framing, payload untouched)",
    raw: bytes(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      chunk("\x1f\x8b\x08\x00raw"),
      "0\r\n\r\n",
    ),
    close: false,
    chunked: true,
  },
  {
    name: "chunked, many one-byte chunks",
    raw: bytes(
      "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n",
      ..."internal error".split("").map((c) => chunk(c)),
      "0\r\n\r\n",
    ),
    close: false,
    chunked: true,
  },
  {
    name: "204 No Content",
    raw: bytes("HTTP/1.1 204 No Content\r\nDate: Sat, 22 Nov 2025 10:00:00 GMT\r\n\r\n"),
    close: false,
  },
  {
    name: "304 Not Modified",
    raw: bytes('HTTP/1.1 304 Not Modified\r\nETag: "abc"\r\nCache-Control: max-age=60\r\n\r\n'),
    close: false,
  },
  {
    // undici's JS layer checks the body length against Content-Length even for a 304 and fails;
    // RFC 9110 §8.6 allows Content-Length in a 304 and it frames nothing. node:http agrees.
    name: "304 Not Modified with Content-Length (node:http reference)",
    raw: bytes('HTTP/1.1 304 Not Modified\r\nETag: "abc"\r\nContent-Length: 1234\r\n\r\n'),
    close: false,
    reference: "node",
  },
  {
    name: "response to HEAD with Content-Length",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1234\r\n\r\n"),
    method: "HEAD",
    close: false,
    contentLength: 1234,
  },
  {
    name: "response to HEAD with Transfer-Encoding: chunked",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    method: "HEAD",
    close: false,
  },
  {
    // undici rejects any 100 it did not ask for ("bad response"); node:http skips it like the parser.
    name: "100 Continue then 200 (node:http reference)",
    raw: bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    close: false,
    reference: "node",
  },
  {
    name: "103 Early Hints then 200",
    raw: bytes(
      "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\nLink: </app.js>; rel=preload\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
    ),
    close: false,
  },
  {
    name: "102 Processing, 103 Early Hints, then 201",
    raw: bytes(
      "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
      "HTTP/1.1 201 Created\r\nLocation: /items/7\r\nContent-Length: 0\r\n\r\n",
    ),
    close: false,
  },
  {
    name: "Connection: close, read-until-close body",
    raw: bytes("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until the server closes"),
    closeAfter: true,
    close: true,
    contentLength: -1,
  },
  {
    name: "HTTP/1.1 without framing headers: read until close",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nno length, no chunks"),
    closeAfter: true,
    close: true,
  },
  {
    name: "Transfer-Encoding without chunked last: read until close",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nnot chunk framing"),
    closeAfter: true,
    close: true,
  },
  {
    name: "two Transfer-Encoding fields, the last not chunked: read until close",
    raw: bytes(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\nraw",
    ),
    closeAfter: true,
    close: true,
  },
  {
    name: "HTTP/1.0 with Content-Length and keep-alive",
    raw: bytes("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\n1.0!"),
    close: false,
  },
  {
    name: "HTTP/1.0 with Content-Length, no keep-alive",
    raw: bytes("HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\n1.0!"),
    closeAfter: true,
    close: true,
  },
  {
    name: "HTTP/1.0 read until close",
    raw: bytes("HTTP/1.0 200 OK\r\nServer: old\r\n\r\nold style body"),
    closeAfter: true,
    close: true,
  },
  {
    name: "Set-Cookie twice",
    raw: bytes(
      "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/; HttpOnly\r\nSet-Cookie: b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT\r\nContent-Length: 0\r\n\r\n",
    ),
    close: false,
  },
  {
    name: "single Set-Cookie (still an array)",
    raw: bytes("HTTP/1.1 200 OK\r\nSet-Cookie: only=1\r\nContent-Length: 0\r\n\r\n"),
    close: false,
  },
  {
    name: "duplicate headers in mixed case",
    raw: bytes(
      "HTTP/1.1 200 OK\r\nX-Dup: 1\r\nx-dup: 2\r\nX-DUP: 3\r\nVary: Accept\r\nVary: Origin\r\nContent-Length: 1\r\n\r\n!",
    ),
    close: false,
  },
  {
    name: "large header block (~10 KB)",
    raw: bytes("HTTP/1.1 200 OK\r\n", manyHeaders, "Content-Length: 3\r\n\r\nbig"),
    close: false,
  },
  {
    name: "binary body, Content-Length",
    raw: bytes(
      `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${allBytes.length}\r\n\r\n`,
      allBytes,
    ),
    close: false,
  },
  {
    name: "binary body, chunked (chunks hold CR, LF and CRLFCRLF)",
    raw: bytes(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      chunk(allBytes.subarray(0, 300)),
      chunk(Buffer.from("\r\n\r\n0\r\n\r\n", "latin1")),
      chunk(allBytes.subarray(300)),
      "0\r\n\r\n",
    ),
    close: false,
    chunked: true,
  },
  {
    name: "header values with spaces and colons",
    raw: bytes(
      "HTTP/1.1 302 Found\r\nLocation: http://example.test:8080/a?b=c:d\r\nX-Time: 12:34:56 UTC\r\nX-Sentence: a  b   c\r\nContent-Length: 0\r\n\r\n",
    ),
    close: false,
  },
  {
    name: "upper-case header names",
    raw: bytes(
      "HTTP/1.1 200 OK\r\nCONTENT-TYPE: TEXT/PLAIN\r\nX-UPPER: A\r\nCONTENT-LENGTH: 3\r\nCONNECTION: KEEP-ALIVE\r\n\r\nabc",
    ),
    close: false,
    contentLength: 3,
  },
  {
    name: "status line without reason",
    raw: bytes("HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"),
    close: false,
  },
  {
    name: "status line with empty reason after the space",
    raw: bytes("HTTP/1.1 404 \r\nContent-Length: 9\r\nX-Why: nothing\r\n\r\nnot found"),
    close: false,
  },
  {
    name: "long reason with spaces and an unusual status",
    raw: bytes("HTTP/1.1 418 I'm a teapot, short and stout\r\nContent-Length: 0\r\n\r\n"),
    close: false,
  },
  {
    name: "status 599",
    raw: bytes("HTTP/1.1 599 Network Connect Timeout Error\r\nContent-Length: 4\r\n\r\nslow"),
    close: false,
  },
  {
    name: "empty header value, no space after colon, tabs and trailing spaces",
    raw: bytes(
      "HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Tight:v\r\nX-Tabs:\t \tinner\tvalue  \r\nContent-Length:5\r\n\r\ntight",
    ),
    close: false,
  },
  {
    name: "obs-text (latin1) header value",
    raw: bytes("HTTP/1.1 200 OK\r\nX-Latin: caf\xe9 \xff\xa0end\r\nContent-Length: 0\r\n\r\n"),
    close: false,
  },
  {
    name: "token characters in a header name",
    raw: bytes("HTTP/1.1 200 OK\r\nX-!#$%&'*+-.^_`|~09: tchars\r\nContent-Length: 0\r\n\r\n"),
    close: false,
  },
  {
    name: "empty lines before the status line",
    raw: bytes("\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    close: false,
  },
  {
    name: "Content-Length with leading zeros and trailing whitespace",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Length: 007 \r\n\r\nleading"),
    close: false,
    contentLength: 7,
  },
  {
    name: "Connection: Keep-Alive, Close",
    raw: bytes("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 3\r\n\r\nbye"),
    close: true,
  },
  {
    name: "Keep-Alive parameters",
    raw: bytes(
      "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 2\r\n\r\nka",
    ),
    close: false,
  },
  {
    name: "HTML error page",
    raw: bytes(
      "HTTP/1.1 404 Not Found\r\nServer: nginx/1.25.3\r\nDate: Sat, 22 Nov 2025 10:00:00 GMT\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 59\r\nConnection: keep-alive\r\n\r\n",
      "<html><body><h1>404 Not Found</h1><p>nothing</p></body></html>".slice(0, 59),
    ),
    close: false,
  },
];

/** What a reference client (or the parser) saw of one response. */
interface Outcome {
  status: number;
  statusText: string;
  headers: Record<string, string | string[]>;
  body: string; // latin1, so binary bodies compare byte for byte
}

/** undici keeps duplicates as arrays and a single set-cookie as a string: bring it to the documented shape. */
function normalizeUndiciHeaders(
  h: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    if (k === "set-cookie") out[k] = Array.isArray(v) ? v : [v];
    else out[k] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

/** What the parser reports: one entry per response, in order. */
interface Parsed {
  head: ResponseHead;
  body: Buffer;
  completes: number;
}

interface FeedResult {
  responses: Parsed[];
  error: unknown;
}

/** A handler that records responses and checks the callback order (onHead, onBody*, onComplete). */
function recorder(): { handler: ParserHandler; responses: Parsed[] } {
  const responses: Parsed[] = [];
  let open: { head: ResponseHead; chunks: Buffer[] } | null = null;
  const handler: ParserHandler = {
    onHead(head) {
      assert.equal(open, null, "onHead while a response is still open");
      open = { head, chunks: [] };
    },
    onBody(b) {
      assert.ok(open, "onBody before onHead");
      assert.ok(b.length > 0, "onBody with an empty chunk");
      open.chunks.push(Buffer.from(b));
    },
    onComplete() {
      assert.ok(open, "onComplete before onHead");
      responses.push({ head: open.head, body: Buffer.concat(open.chunks), completes: 1 });
      open = null;
    },
  };
  return { handler, responses };
}

/**
 * Feeds the pieces to a fresh parser (expect() once per method first), each piece copied to its own
 * buffer and scribbled over after execute() returns, so the parser cannot keep pointers into old input.
 */
function feed(
  pieces: Buffer[],
  methods: string[],
  opts: { finish?: boolean; maxHeaderBytes?: number } = {},
): FeedResult {
  const { handler, responses } = recorder();
  const parser = new ResponseParser(
    handler,
    opts.maxHeaderBytes ? { maxHeaderBytes: opts.maxHeaderBytes } : undefined,
  );
  for (const m of methods) parser.expect(m);
  try {
    for (const piece of pieces) {
      const copy = Buffer.from(piece);
      parser.execute(copy);
      copy.fill(0x58);
    }
    if (opts.finish) parser.finish();
  } catch (error) {
    return { responses, error };
  }
  assert.equal(parser.busy, false, "parser still busy after all responses");
  return { responses, error: null };
}

/** Every single split point (both halves, empty halves included). */
function* everySplit(raw: Buffer): Generator<Buffer[]> {
  for (let i = 0; i <= raw.length; i++) yield [raw.subarray(0, i), raw.subarray(i)];
}

/** A few random multi-splits and the byte-by-byte feed. */
function* otherSplits(raw: Buffer, seed: number): Generator<Buffer[]> {
  const rand = rng(seed);
  for (let k = 0; k < 12; k++) {
    const cuts = new Set<number>();
    const n = 2 + Math.floor(rand() * 8);
    for (let j = 0; j < n; j++) cuts.add(Math.floor(rand() * (raw.length + 1)));
    const sorted = [...cuts].sort((a, b) => a - b);
    const pieces: Buffer[] = [];
    let prev = 0;
    for (const c of sorted) {
      pieces.push(raw.subarray(prev, c));
      prev = c;
    }
    pieces.push(raw.subarray(prev));
    yield pieces;
  }
  yield Array.from({ length: raw.length }, (_, i) => raw.subarray(i, i + 1));
}

/** The comparable view of a parsed response (head fields, headers as parseHeaders gives them, body). */
function view(p: Parsed) {
  return {
    ...p.head,
    headers: parseHeaders(p.head.rawHeaders),
    body: p.body.toString("latin1"),
    completes: p.completes,
  };
}

// ---------------------------------------------------------------------------------------------
// The raw server: GET /c/<id> answers with the registered bytes, then maybe ends the connection.

const registry = new Map<string, { raw: Buffer; closeAfter: boolean }>();
let nextId = 0;
let server: net.Server;
let origin = "";
let port = 0;
const sockets = new Set<net.Socket>();

function register(raw: Buffer, closeAfter: boolean): string {
  const path = `/c/${nextId++}`;
  registry.set(path, { raw, closeAfter });
  return path;
}

async function viaUndici(raw: Buffer, method: string, closeAfter: boolean): Promise<Outcome> {
  const path = register(raw, closeAfter);
  const client = new Client(origin, { headersTimeout: 5000, bodyTimeout: 5000 });
  try {
    const res = await client.request({ path, method });
    const body = Buffer.from(await res.body.arrayBuffer());
    return {
      status: res.statusCode,
      statusText: res.statusText,
      headers: normalizeUndiciHeaders(res.headers),
      body: body.toString("latin1"),
    };
  } finally {
    await client.destroy();
  }
}

function viaNode(raw: Buffer, method: string, closeAfter: boolean): Promise<Outcome> {
  const path = register(raw, closeAfter);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("error", reject);
      res.on("end", () => {
        const headers: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = v;
        resolve({
          status: res.statusCode!,
          statusText: res.statusMessage ?? "",
          headers,
          body: Buffer.concat(parts).toString("latin1"),
        });
        req.destroy();
      });
    });
    req.on("error", reject);
    req.setTimeout(5000, () => req.destroy(new Error("reference request timed out")));
    req.end();
  });
}

function reference(c: Case): Promise<Outcome> {
  const method = c.method ?? "GET";
  return c.reference === "node"
    ? viaNode(c.raw, method, c.closeAfter ?? false)
    : viaUndici(c.raw, method, c.closeAfter ?? false);
}

before(async () => {
  server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let request = Buffer.alloc(0);
    let answered = false;
    socket.on("data", (d: Buffer) => {
      if (answered) return;
      request = Buffer.concat([request, d]);
      const end = request.indexOf("\r\n\r\n");
      if (end === -1) return;
      answered = true;
      const path = request.toString("latin1", 0, end).split(" ")[1] ?? "";
      const entry = registry.get(path);
      if (!entry) {
        socket.destroy();
        return;
      }
      socket.write(entry.raw);
      if (entry.closeAfter) socket.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe("ResponseParser vs undici: valid responses", () => {
  it("the corpus is big enough and its names are unique", () => {
    assert.ok(CORPUS.length >= 30, `corpus has ${CORPUS.length} cases`);
    assert.equal(new Set(CORPUS.map((c) => c.name)).size, CORPUS.length);
  });

  CORPUS.forEach((c, index) => {
    it(c.name, async () => {
      const ref = await reference(c);
      const method = c.method ?? "GET";
      const whole = feed([c.raw], [method], { finish: c.closeAfter });
      assert.equal(whole.error, null, `parser failed on the whole response: ${whole.error}`);
      assert.equal(whole.responses.length, 1, "exactly one onComplete");
      const got = whole.responses[0]!;

      // Same as the reference client.
      assert.equal(got.head.status, ref.status, "status");
      assert.equal(got.head.statusText, ref.statusText, "statusText");
      assert.deepStrictEqual({ ...parseHeaders(got.head.rawHeaders) }, ref.headers, "headers");
      assert.equal(got.body.toString("latin1"), ref.body, "body");
      // Framing facts the reference does not expose.
      assert.equal(got.head.close, c.close, "close");
      assert.equal(got.head.chunked, c.chunked ?? false, "chunked");
      if (c.contentLength !== undefined)
        assert.equal(got.head.contentLength, c.contentLength, "contentLength");

      // Identical under every split, random multi-splits and byte by byte.
      const expected = view(got);
      for (const pieces of [...everySplit(c.raw), ...otherSplits(c.raw, 1000 + index)]) {
        const r = feed(pieces, [method], { finish: c.closeAfter });
        if (r.error !== null || r.responses.length !== 1) {
          assert.fail(
            `split ${pieces.map((p) => p.length).join("+")}: error=${r.error} responses=${r.responses.length}`,
          );
        }
        assert.deepStrictEqual(
          view(r.responses[0]!),
          expected,
          `split ${pieces.map((p) => p.length).join("+")}`,
        );
      }
    });
  });

  it("pipelined responses in one buffer come out in order, under every split", async () => {
    const byName = (name: string) => CORPUS.find((c) => c.name === name)!;
    const groups = [
      ["content-length", "chunked with trailers", "204 No Content"],
      [
        "response to HEAD with Content-Length",
        "103 Early Hints then 200",
        "chunked with extensions (token, quoted, escaped, several)",
      ],
      [
        "binary body, chunked (chunks hold CR, LF and CRLFCRLF)",
        "304 Not Modified",
        "status line without reason",
      ],
    ];
    for (const names of groups) {
      const cases = names.map(byName);
      const refs: Outcome[] = [];
      for (const c of cases) refs.push(await reference(c));
      const methods = cases.map((c) => c.method ?? "GET");
      const raw = Buffer.concat(cases.map((c) => c.raw));
      const check = (r: FeedResult, label: string) => {
        assert.equal(r.error, null, `${label}: ${r.error}`);
        assert.equal(r.responses.length, cases.length, `${label}: one onComplete per response`);
        r.responses.forEach((p, i) => {
          assert.equal(p.head.status, refs[i]!.status, `${label}: status of #${i}`);
          assert.deepStrictEqual(
            { ...parseHeaders(p.head.rawHeaders) },
            refs[i]!.headers,
            `${label}: headers of #${i}`,
          );
          assert.equal(p.body.toString("latin1"), refs[i]!.body, `${label}: body of #${i}`);
        });
      };
      check(feed([raw], methods), names.join(" + "));
      for (const pieces of [...everySplit(raw), ...otherSplits(raw, 77)]) {
        check(feed(pieces, methods), `${names.join(" + ")} split ${pieces.map((p) => p.length).join("+")}`);
      }
    }
  });
});

interface BadCase {
  name: string;
  raw: Buffer;
  method?: "GET" | "HEAD";
  /** The ParseError code the parser gives. */
  code: string;
  /** undici rejects it too (false only where the reference result is not meaningful). */
  undiciRejects: boolean;
}

const BAD: BadCase[] = [
  {
    name: "garbage instead of a status line",
    raw: bytes("SSH-2.0-OpenSSH_9.6\r\n\r\n"),
    code: "HPE_INVALID_CONSTANT",
    undiciRejects: true,
  },
  {
    name: "lower-case protocol name",
    raw: bytes("http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_CONSTANT",
    undiciRejects: true,
  },
  {
    name: "HTTP/1.2",
    raw: bytes("HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_VERSION",
    undiciRejects: true,
  },
  {
    name: "letters in the status code",
    raw: bytes("HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_STATUS",
    undiciRejects: true,
  },
  {
    name: "two-digit status code",
    raw: bytes("HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_STATUS",
    undiciRejects: true,
  },
  {
    name: "four-digit status code",
    raw: bytes("HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_STATUS",
    undiciRejects: true,
  },
  {
    name: "status code below 100",
    raw: bytes("HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_STATUS",
    undiciRejects: true,
  },
  {
    name: "two spaces before the status code",
    raw: bytes("HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_STATUS",
    undiciRejects: true,
  },
  {
    name: "tab after the version",
    raw: bytes("HTTP/1.1\t200 OK\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_VERSION",
    undiciRejects: true,
  },
  {
    name: "bare LF line endings",
    raw: bytes("HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
    code: "HPE_STRICT",
    undiciRejects: true,
  },
  {
    name: "bare LF inside the reason",
    raw: bytes("HTTP/1.1 200 O\nK\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_STRICT",
    undiciRejects: true,
  },
  {
    name: "bare CR inside a header value",
    raw: bytes("HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_STRICT",
    undiciRejects: true,
  },
  {
    name: "bare LF inside a header value",
    raw: bytes("HTTP/1.1 200 OK\r\nX-A: a\nb\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_HEADER_TOKEN",
    undiciRejects: true,
  },
  {
    name: "NUL in a header value",
    raw: bytes("HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_HEADER_TOKEN",
    undiciRejects: true,
  },
  {
    name: "DEL in a header value",
    raw: bytes("HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_HEADER_TOKEN",
    undiciRejects: true,
  },
  {
    name: "obs-fold",
    raw: bytes("HTTP/1.1 200 OK\r\nX-A: a\r\n folded\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_HEADER_TOKEN",
    undiciRejects: true,
  },
  {
    name: "space before the colon",
    raw: bytes("HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_HEADER_TOKEN",
    undiciRejects: true,
  },
  {
    name: "header line without a colon",
    raw: bytes("HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_HEADER_TOKEN",
    undiciRejects: true,
  },
  {
    name: "empty header name",
    raw: bytes("HTTP/1.1 200 OK\r\n: empty\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_HEADER_TOKEN",
    undiciRejects: true,
  },
  {
    name: "non-token byte in a header name",
    raw: bytes("HTTP/1.1 200 OK\r\nX(A): 1\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_INVALID_HEADER_TOKEN",
    undiciRejects: true,
  },
  {
    name: "negative Content-Length",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok"),
    code: "HPE_INVALID_CONTENT_LENGTH",
    undiciRejects: true,
  },
  {
    name: "Content-Length with a plus sign",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok"),
    code: "HPE_INVALID_CONTENT_LENGTH",
    undiciRejects: true,
  },
  {
    name: "hex Content-Length",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok"),
    code: "HPE_INVALID_CONTENT_LENGTH",
    undiciRejects: true,
  },
  {
    name: "empty Content-Length",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nok"),
    code: "HPE_INVALID_CONTENT_LENGTH",
    undiciRejects: true,
  },
  {
    name: "Content-Length list",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok"),
    code: "HPE_INVALID_CONTENT_LENGTH",
    undiciRejects: true,
  },
  {
    name: "Content-Length with inner space",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Length: 2 2\r\n\r\nok"),
    code: "HPE_INVALID_CONTENT_LENGTH",
    undiciRejects: true,
  },
  {
    name: "conflicting duplicate Content-Length",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!"),
    code: "HPE_UNEXPECTED_CONTENT_LENGTH",
    undiciRejects: true,
  },
  {
    name: "Content-Length beyond 2^53",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nok"),
    code: "HPE_INVALID_CONTENT_LENGTH",
    undiciRejects: true,
  },
  {
    name: "bad chunk size",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n"),
    code: "HPE_INVALID_CHUNK_SIZE",
    undiciRejects: true,
  },
  {
    name: "empty chunk size",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nok\r\n0\r\n\r\n"),
    code: "HPE_INVALID_CHUNK_SIZE",
    undiciRejects: true,
  },
  {
    name: "space after the chunk size",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n0\r\n\r\n"),
    code: "HPE_INVALID_CHUNK_SIZE",
    undiciRejects: true,
  },
  {
    name: "chunk size 0x prefix",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nok\r\n0\r\n\r\n"),
    code: "HPE_INVALID_CHUNK_SIZE",
    undiciRejects: true,
  },
  {
    name: "chunk size overflow",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nok\r\n0\r\n\r\n"),
    code: "HPE_INVALID_CHUNK_SIZE",
    undiciRejects: true,
  },
  {
    name: "chunk data longer than its size",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n"),
    code: "HPE_STRICT",
    undiciRejects: true,
  },
  {
    name: "bare LF after the chunk size",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n"),
    code: "HPE_INVALID_CHUNK_SIZE",
    undiciRejects: true,
  },
  {
    name: "empty chunk extension name",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;;\r\nok\r\n0\r\n\r\n"),
    code: "HPE_INVALID_CHUNK_EXTENSION",
    undiciRejects: true,
  },
  {
    name: "space in a chunk extension",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2; a=b\r\nok\r\n0\r\n\r\n"),
    code: "HPE_INVALID_CHUNK_EXTENSION",
    undiciRejects: true,
  },
  {
    name: "control byte in a chunk extension value",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=\x01\r\nok\r\n0\r\n\r\n"),
    code: "HPE_INVALID_CHUNK_EXTENSION",
    undiciRejects: true,
  },
  {
    name: "invalid trailer name",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX T: 1\r\n\r\n"),
    code: "HPE_INVALID_HEADER_TOKEN",
    undiciRejects: true,
  },
  {
    name: "control byte in a trailer value",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\x01\r\n\r\n"),
    code: "HPE_INVALID_HEADER_TOKEN",
    undiciRejects: true,
  },
  {
    name: "header block over 64 KiB",
    raw: bytes("HTTP/1.1 200 OK\r\nX-Big: ", "a".repeat(70 * 1024), "\r\nContent-Length: 0\r\n\r\n"),
    code: "HPE_HEADER_OVERFLOW",
    undiciRejects: true,
  },
  {
    name: "endless status line",
    raw: bytes("HTTP/1.1 200 ", "O".repeat(65 * 1024)),
    code: "HPE_HEADER_OVERFLOW",
    undiciRejects: true,
  },
  {
    name: "101 Switching Protocols (upgrade not supported)",
    raw: bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
    code: "HPE_UPGRADE",
    undiciRejects: true,
  },
  {
    name: "connection closed in the middle of a Content-Length body",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
    code: "HPE_INVALID_EOF_STATE",
    undiciRejects: true,
  },
  {
    name: "connection closed in the middle of a chunked body",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
    code: "HPE_INVALID_EOF_STATE",
    undiciRejects: true,
  },
  {
    name: "connection closed before the last chunk",
    raw: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"),
    code: "HPE_INVALID_EOF_STATE",
    undiciRejects: true,
  },
  {
    name: "connection closed in the middle of the head",
    raw: bytes("HTTP/1.1 200 OK\r\nContent-Le"),
    code: "HPE_INVALID_EOF_STATE",
    undiciRejects: true,
  },
  {
    name: "connection closed before any response byte",
    raw: bytes(""),
    code: "HPE_CLOSED_BEFORE_RESPONSE",
    undiciRejects: true,
  },
];

describe("ResponseParser vs undici: invalid responses", () => {
  BAD.forEach((c) => {
    it(`${c.name} → ParseError ${c.code}`, async () => {
      if (c.undiciRejects) {
        await assert.rejects(
          viaUndici(c.raw, c.method ?? "GET", true),
          (err: unknown) => err instanceof Error,
          "undici accepted it",
        );
      }
      const splits = c.raw.length > 4096 ? [[c.raw], ...otherSplits(c.raw, 5)] : [...everySplit(c.raw)];
      for (const pieces of splits) {
        const r = feed(pieces, [c.method ?? "GET"], { finish: true });
        const label = `split ${pieces.map((p) => p.length).join("+")}`;
        assert.ok(r.error instanceof ParseError, `${label}: expected a ParseError, got ${r.error}`);
        assert.equal(r.error.code, c.code, `${label}: ${r.error.message}`);
        assert.equal(r.responses.length, 0, `${label}: no onComplete for an invalid response`);
      }
    });
  });

  it("protocol errors carry undici's message prefix", () => {
    const r = feed([bytes("HTTP/1.1 2OO OK\r\n\r\n")], ["GET"]);
    assert.ok(r.error instanceof ParseError);
    assert.match(r.error.message, /^Response does not match the HTTP\/1\.1 protocol \(/);
    assert.equal(r.error.name, "ParseError");
    const upgrade = feed([bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")], ["GET"]);
    assert.ok(upgrade.error instanceof ParseError);
    assert.match(upgrade.error.message, /^upgrade not supported/);
  });
});

describe("ResponseParser: deliberate differences from undici", () => {
  // Each of these is what the fast path's rules say; undici/llhttp reject the message instead.
  it("identical duplicate Content-Length is accepted (RFC 9110 §8.6; undici rejects)", () => {
    const raw = bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok");
    for (const pieces of everySplit(raw)) {
      const r = feed(pieces, ["GET"]);
      assert.equal(r.error, null);
      assert.equal(r.responses[0]!.body.toString(), "ok");
      assert.equal(r.responses[0]!.head.contentLength, 2);
    }
  });

  it("Transfer-Encoding: chunked overrides Content-Length and marks the connection close (RFC 9112 §6.3)", () => {
    for (const order of ["cl-first", "te-first"]) {
      const fields =
        order === "cl-first"
          ? "Content-Length: 100\r\nTransfer-Encoding: chunked\r\n"
          : "Transfer-Encoding: chunked\r\nContent-Length: 100\r\n";
      const raw = bytes(`HTTP/1.1 200 OK\r\n${fields}\r\n`, chunk("smuggle?"), "0\r\n\r\n");
      for (const pieces of everySplit(raw)) {
        const r = feed(pieces, ["GET"]);
        assert.equal(r.error, null);
        const p = r.responses[0]!;
        assert.equal(p.body.toString(), "smuggle?");
        assert.deepEqual([p.head.chunked, p.head.contentLength, p.head.close], [true, -1, true]);
      }
    }
  });

  it("HTTP/1.0 with chunked framing is parsed but the connection is marked close", () => {
    const raw = bytes(
      "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
      chunk("old"),
      "0\r\n\r\n",
    );
    const r = feed([raw], ["GET"]);
    assert.equal(r.error, null);
    assert.equal(r.responses[0]!.body.toString(), "old");
    assert.equal(r.responses[0]!.head.close, true);
  });

  it("only HTTP/1.0 and HTTP/1.1 status lines are accepted (llhttp also takes HTTP/2.0 here)", () => {
    const r = feed([bytes("HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n")], ["GET"]);
    assert.ok(r.error instanceof ParseError);
    assert.equal(r.error.code, "HPE_INVALID_VERSION");
  });

  it("a 204 with a Content-Length has no body (undici fails on it; node:http agrees with the parser)", async () => {
    const raw = bytes("HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n");
    const ref = await viaNode(raw, "GET", false);
    const r = feed([raw], ["GET"]);
    assert.equal(r.error, null);
    assert.equal(r.responses[0]!.head.status, ref.status);
    assert.equal(r.responses[0]!.body.toString("latin1"), ref.body);
    assert.deepStrictEqual({ ...parseHeaders(r.responses[0]!.head.rawHeaders) }, ref.headers);
  });
});

describe("ResponseParser: API behaviour", () => {
  const simple = bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");

  it("busy is true between expect() and onComplete()", () => {
    let busyInComplete: boolean | null = null;
    const parser = new ResponseParser({
      onHead() {},
      onBody() {},
      onComplete() {
        busyInComplete = parser.busy;
      },
    });
    assert.equal(parser.busy, false);
    parser.expect("GET");
    assert.equal(parser.busy, true);
    parser.execute(simple.subarray(0, 20));
    assert.equal(parser.busy, true);
    parser.execute(simple.subarray(20));
    assert.equal(busyInComplete, false);
    assert.equal(parser.busy, false);
  });

  it("bytes when no response is expected are an error, after the previous response completed", () => {
    const r = feed([bytes(simple, "HTTP/1.1 200 OK\r\n")], ["GET"]);
    assert.equal(r.responses.length, 1);
    assert.equal(r.responses[0]!.body.toString(), "ok");
    assert.ok(r.error instanceof ParseError);
    assert.equal(r.error.code, "HPE_UNEXPECTED_DATA");
    const idle = feed([bytes("X")], []);
    assert.ok(idle.error instanceof ParseError);
    assert.equal(idle.error.code, "HPE_UNEXPECTED_DATA");
  });

  it("stray CRLFs between responses are ignored, even when idle (as llhttp)", () => {
    const r = feed([bytes(simple, "\r\n"), bytes("\r\n")], ["GET"]);
    assert.equal(r.error, null);
    assert.equal(r.responses.length, 1);
  });

  it("expect() queues: pipelined GET, HEAD, GET", () => {
    const raw = bytes(simple, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", simple);
    for (const pieces of everySplit(raw)) {
      const r = feed(pieces, ["GET", "HEAD", "GET"]);
      assert.equal(r.error, null);
      assert.deepEqual(
        r.responses.map((p) => [p.head.contentLength, p.body.toString()]),
        [
          [2, "ok"],
          [5, ""],
          [2, "ok"],
        ],
      );
    }
    // The HEAD flag is case-insensitive and a long queue grows.
    const many = Array.from({ length: 40 }, (_, i) => (i % 3 === 1 ? "head" : "GET"));
    const manyRaw = Buffer.concat(
      many.map((m) => (m === "head" ? bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n") : simple)),
    );
    const r = feed([manyRaw], many);
    assert.equal(r.error, null);
    assert.equal(r.responses.length, 40);
  });

  it("finish(): no-op when idle, completes a read-until-close body, errors mid-message", () => {
    const { handler, responses } = recorder();
    const parser = new ResponseParser(handler);
    parser.finish(); // idle: nothing happens
    parser.expect("GET");
    parser.execute(bytes("HTTP/1.1 200 OK\r\n\r\npart one, "));
    parser.execute(bytes("part two"));
    assert.equal(responses.length, 0);
    parser.finish();
    assert.equal(responses.length, 1);
    assert.equal(responses[0]!.body.toString(), "part one, part two");
    assert.equal(responses[0]!.head.close, true);
    assert.equal(parser.busy, false);

    const p2 = new ResponseParser(recorder().handler);
    p2.expect("GET");
    p2.execute(bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"));
    assert.throws(
      () => p2.finish(),
      (e: unknown) =>
        e instanceof ParseError &&
        e.code === "HPE_INVALID_EOF_STATE" &&
        e.message === "connection closed before the response was complete",
    );

    const p3 = new ResponseParser(recorder().handler);
    p3.expect("GET");
    assert.throws(
      () => p3.finish(),
      (e: unknown) =>
        e instanceof ParseError &&
        e.code === "HPE_CLOSED_BEFORE_RESPONSE" &&
        e.message.startsWith("connection closed before the response was complete"),
    );
  });

  it("a 1xx then close is mid-message, not 'no response bytes'", () => {
    const p = new ResponseParser(recorder().handler);
    p.expect("GET");
    p.execute(bytes("HTTP/1.1 100 Continue\r\n\r\n"));
    assert.throws(
      () => p.finish(),
      (e: unknown) => e instanceof ParseError && e.code === "HPE_INVALID_EOF_STATE",
    );
  });

  it("after a ParseError execute() keeps throwing until reset(); reset() makes it reusable", () => {
    const { handler, responses } = recorder();
    const parser = new ResponseParser(handler);
    parser.expect("GET");
    assert.throws(() => parser.execute(bytes("HTTP/1.1 2OO OK\r\n\r\n")), ParseError);
    assert.throws(() => parser.execute(simple), ParseError);
    parser.reset();
    assert.equal(parser.busy, false);
    parser.expect("GET");
    parser.execute(simple);
    assert.equal(responses.length, 1);
    assert.equal(responses[0]!.body.toString(), "ok");
  });

  it("reset() from inside a callback stops the current execute()", () => {
    let heads = 0;
    let bodies = 0;
    const parser = new ResponseParser({
      onHead() {
        heads++;
        parser.reset();
      },
      onBody() {
        bodies++;
      },
      onComplete() {
        assert.fail("onComplete after reset");
      },
    });
    parser.expect("GET");
    parser.execute(bytes(simple, simple));
    assert.deepEqual([heads, bodies, parser.busy], [1, 0, false]);
  });

  it("maxHeaderBytes: a head of exactly the limit passes, one byte more fails, under every split", () => {
    const head = bytes("HTTP/1.1 200 OK\r\nX-Pad: ", "p".repeat(60), "\r\nContent-Length: 2\r\n\r\n");
    const raw = bytes(head, "ok");
    for (const pieces of everySplit(raw)) {
      const ok = feed(pieces, ["GET"], { maxHeaderBytes: head.length });
      assert.equal(ok.error, null, `split ${pieces.map((p) => p.length).join("+")}: ${ok.error}`);
      assert.equal(ok.responses[0]!.body.toString(), "ok");
      const over = feed(pieces, ["GET"], { maxHeaderBytes: head.length - 1, finish: true });
      assert.ok(over.error instanceof ParseError);
      assert.equal(over.error.code, "HPE_HEADER_OVERFLOW", `split ${pieces.map((p) => p.length).join("+")}`);
    }
  });

  it("maxHeaderBytes bounds each interim head and the trailers too", () => {
    const interim = bytes("HTTP/1.1 103 Early Hints\r\nLink: ", "l".repeat(200), "\r\n\r\n");
    const r = feed([bytes(interim, simple)], ["GET"], { maxHeaderBytes: 128 });
    assert.ok(r.error instanceof ParseError);
    assert.equal(r.error.code, "HPE_HEADER_OVERFLOW");
    const trailers = bytes(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ",
      "t".repeat(200),
      "\r\n\r\n",
    );
    for (const pieces of everySplit(trailers)) {
      const t = feed(pieces, ["GET"], { maxHeaderBytes: 128 });
      assert.ok(t.error instanceof ParseError);
      assert.equal(t.error.code, "HPE_HEADER_OVERFLOW");
    }
  });

  it("onHead's object is the caller's to keep and the body chunks are views of the input", () => {
    const heads: ResponseHead[] = [];
    const views: Buffer[] = [];
    const parser = new ResponseParser({
      onHead: (h) => heads.push(h),
      onBody: (b) => views.push(b),
      onComplete() {},
    });
    parser.expect("GET");
    parser.expect("GET");
    const input = bytes(simple, "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew");
    parser.execute(input);
    assert.deepEqual(
      heads.map((h) => [h.status, h.statusText, h.rawHeaders]),
      [
        [200, "OK", "Content-Length: 2"],
        [201, "Created", "Content-Length: 3"],
      ],
    );
    assert.equal(views[0]!.buffer, input.buffer, "onBody gets a subarray, not a copy");
  });

  it("parseHeaders: lower-case names, set-cookie array, duplicates joined, awkward names kept", () => {
    const h = parseHeaders(
      "Content-Type: text/html\r\nSet-Cookie: a=1\r\nX-A: 1\r\nx-a:2\r\nSET-COOKIE: b=2\r\n__proto__: p\r\nConstructor: c\r\nX-Colon: a:b: c",
    );
    assert.deepStrictEqual(
      { ...h },
      {
        "content-type": "text/html",
        "set-cookie": ["a=1", "b=2"],
        "x-a": "1, 2",
        ["__proto__"]: "p",
        constructor: "c",
        "x-colon": "a:b: c",
      },
    );
    assert.equal(
      Object.getPrototypeOf(h),
      Object.prototype,
      "the __proto__ header did not replace the prototype",
    );
    assert.deepStrictEqual({ ...parseHeaders("") }, {});
  });
});
