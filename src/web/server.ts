import { timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { BaselineStore, parseResult } from "../compare/store.js";
import { CicadaError } from "../core/errors.js";
import { isLoopback, type Refusal, RequestGuard } from "../core/http-guard.js";
import { exceptionsCsv, failuresCsv, statsCsv } from "../outputs/csv.js";
import { renderHtmlReport } from "../outputs/html/report.js";
import { type MetricsSource, PrometheusOutput } from "../outputs/prometheus.js";
import { ApiError, newCursor, type SeriesCursor, type WebController } from "./controller.js";

export { isLoopback };

/** The built UI: dist/web next to dist/src (this file is dist/src/web/server.js). */
export const ASSETS_DIR = fileURLToPath(new URL("../../web/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".woff2": "font/woff2",
};

const SECURITY_HEADERS: Array<[string, string]> = [
  ["x-frame-options", "DENY"],
  ["content-security-policy", "frame-ancestors 'none'"],
  ["cross-origin-resource-policy", "same-origin"],
  ["x-content-type-options", "nosniff"],
];

/** Bodies of API requests are small; a bigger one is a mistake or an attack. */
const MAX_BODY = 64 * 1024 * 1024;

export interface WebServerOptions {
  host: string;
  port: number;
  /** "user:pass" for HTTP Basic login; undefined for none. */
  login?: string;
  baselines: BaselineStore;
  /** The books /metrics reads (Prometheus text format). */
  metrics?: () => MetricsSource | undefined;
}

interface Client {
  res: ServerResponse;
  cursor: SeriesCursor;
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
    "cache-control": "no-store",
    ...headers,
  });
  res.end(text);
}

function refuse(res: ServerResponse, r: Refusal): void {
  send(res, r.status, { error: r.message, reason: r.reason });
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new ApiError(413, "request body too large");
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8").trim();
  if (text === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ApiError(400, "the body is not valid JSON");
  }
  if (v === null || typeof v !== "object" || Array.isArray(v))
    throw new ApiError(400, "expected a JSON object");
  return v as Record<string, unknown>;
}

/**
 * The web UI's HTTP server: the built assets, the JSON API, and the event stream that pushes
 * state and stats to every open page.
 */
export class WebServer {
  private readonly server: Server;
  private readonly clients = new Set<Client>();
  private readonly expected: Buffer | undefined;
  private prometheus: PrometheusOutput | undefined;
  /** Set once listening: the Host names it accepts depend on the address and port it got. */
  private guard: RequestGuard | undefined;
  url = "";

  constructor(
    private readonly controller: WebController,
    private readonly opts: WebServerOptions,
  ) {
    this.expected = opts.login
      ? Buffer.from(`Basic ${Buffer.from(opts.login).toString("base64")}`)
      : undefined;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (err instanceof ApiError) send(res, err.status, { error: err.message });
        else if (err instanceof CicadaError) send(res, 400, { error: err.message });
        else send(res, 500, { error: `internal error: ${(err as Error)?.message ?? err}` });
      });
    });
    controller.onChange = (kind) => this.broadcast(kind);
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const a = this.server.address() as AddressInfo;
    this.guard = new RequestGuard(this.opts.host, a.address, a.port);
    const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
    this.url = `http://${host}:${a.port}`;
    return this.url;
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.res.end();
    this.clients.clear();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private authorized(req: IncomingMessage): boolean {
    if (!this.expected) return true;
    const got = Buffer.from(req.headers.authorization ?? "");
    return got.length === this.expected.length && timingSafeEqual(got, this.expected);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // No other site may frame the UI (and click Start in it) or read its answers.
    for (const [k, v] of SECURITY_HEADERS) res.setHeader(k, v);
    const guard = this.guard;
    if (!guard) throw new ApiError(503, "not listening yet");
    // Before the login: a browser sends its cached login with a cross-site request too.
    const refusal = guard.checkSite(req);
    if (refusal) return refuse(res, refusal);
    if (!this.authorized(req)) {
      send(
        res,
        401,
        { error: "login required" },
        { "www-authenticate": 'Basic realm="cicada", charset="UTF-8"' },
      );
      return;
    }
    const badBody = guard.checkBody(req);
    if (badBody) return refuse(res, badBody);
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname;
    const method = req.method ?? "GET";
    const c = this.controller;
    if (path === "/metrics" && this.opts.metrics) {
      if (method !== "GET" && method !== "HEAD") throw new ApiError(405, "method not allowed");
      this.prometheus ??= new PrometheusOutput(this.opts.metrics);
      const text = await this.prometheus.metrics();
      res.writeHead(200, { "content-type": this.prometheus.contentType, "cache-control": "no-store" });
      res.end(text);
      return;
    }
    if (!path.startsWith("/api/")) {
      if (method !== "GET" && method !== "HEAD") throw new ApiError(405, "method not allowed");
      this.serveAsset(path, res);
      return;
    }
    const route = `${method} ${path}`;
    switch (route) {
      case "GET /api/state":
        return send(res, 200, c.state());
      case "POST /api/start":
        return send(res, 200, { ok: true, run: await c.start(await readJson(req)) });
      case "POST /api/stop":
        c.stop();
        return send(res, 200, { ok: true });
      case "POST /api/edit":
        c.edit(await readJson(req));
        return send(res, 200, { ok: true });
      case "POST /api/reset":
        c.reset();
        return send(res, 200, { ok: true });
      case "GET /api/stats": {
        const ev = c.statsEvent(newCursor());
        if (!ev) throw new ApiError(404, "no test has run yet");
        return send(res, 200, ev);
      }
      case "GET /api/events":
        return this.openStream(req, res);
      case "GET /api/report.json":
        return send(res, 200, `${JSON.stringify(c.result(), null, 2)}\n`, {
          "content-type": "application/json",
          "content-disposition": 'attachment; filename="cicada-result.json"',
        });
      case "GET /api/report.html":
        return send(res, 200, renderHtmlReport(c.result()), {
          "content-type": "text/html; charset=utf-8",
          "content-disposition": 'attachment; filename="cicada-report.html"',
        });
      case "GET /api/baselines":
        return send(res, 200, this.opts.baselines.list());
      case "POST /api/baselines":
        return this.saveBaseline(req, res);
    }
    const csv = /^GET \/api\/report\/(stats|stats_history|failures|exceptions)\.csv$/.exec(route);
    if (csv) {
      const t = c.current;
      const books = t.runner.stats;
      const kind = csv[1]!;
      const text =
        kind === "stats"
          ? statsCsv(books, t.statsElapsedSec)
          : kind === "stats_history"
            ? (t.csv?.history() ?? "")
            : kind === "failures"
              ? failuresCsv(books)
              : exceptionsCsv(books);
      return send(res, 200, text, {
        "content-type": "text/csv; charset=utf-8",
        "content-disposition": `attachment; filename="cicada_${kind}.csv"`,
      });
    }
    const baseline = /^GET \/api\/baselines\/([^/]+)$/.exec(route);
    if (baseline) {
      const name = decodeURIComponent(baseline[1]!);
      if (!this.opts.baselines.has(name)) throw new ApiError(404, `no baseline "${name}"`);
      return send(res, 200, this.opts.baselines.load(name));
    }
    throw new ApiError(404, `no such endpoint: ${method} ${path}`);
  }

  private async saveBaseline(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    const name = typeof body.name === "string" ? body.name : "";
    if (!name) throw new ApiError(400, 'expected {"name": "..."}');
    const result =
      body.result === undefined
        ? this.controller.result()
        : parseResult(JSON.stringify(body.result), "the uploaded result");
    if (body.force !== true && this.opts.baselines.has(name)) {
      throw new ApiError(409, `baseline "${name}" already exists; send "force": true to overwrite it`);
    }
    const path = this.opts.baselines.save(name, result, { force: body.force === true });
    send(res, 201, { name, path });
  }

  private serveAsset(path: string, res: ServerResponse): void {
    const rel = path === "/" ? "index.html" : decodeURIComponent(path.slice(1));
    const file = normalize(join(ASSETS_DIR, rel));
    // Nothing outside the assets directory, whatever the path says.
    if (!file.startsWith(ASSETS_DIR.endsWith(sep) ? ASSETS_DIR : ASSETS_DIR + sep)) {
      send(res, 404, { error: "not found" });
      return;
    }
    if (!existsSync(file) || !statSync(file).isFile()) {
      if (rel === "index.html") {
        send(
          res,
          503,
          "The web UI's assets are not built. In a clone of Cicada, run `npm run build`; the API under /api/ works without them.\n",
        );
      } else send(res, 404, { error: "not found" });
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[extname(file)] ?? "application/octet-stream",
      "cache-control": rel === "index.html" ? "no-store" : "max-age=3600",
    });
    res.end(readFileSync(file));
  }

  private openStream(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.write("retry: 1000\n\n");
    const client: Client = { res, cursor: newCursor() };
    this.clients.add(client);
    req.on("close", () => this.clients.delete(client));
    this.push(client, "state");
    this.push(client, "stats");
  }

  private push(client: Client, kind: "state" | "stats"): void {
    const data = kind === "state" ? this.controller.state() : this.controller.statsEvent(client.cursor);
    if (data === undefined) return;
    client.res.write(`event: ${kind}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private broadcast(kind: "state" | "stats"): void {
    for (const c of this.clients) {
      try {
        this.push(c, kind);
      } catch {
        this.clients.delete(c);
      }
    }
    // The state changes with the phase; stats events carry it, the state event the rest.
    if (kind === "stats") for (const c of this.clients) this.push(c, "state");
  }
}

/** True for addresses only this machine can reach. */
export { BaselineStore };
