/** Refusals of requests no page of the server's own would send: DNS rebinding and cross-site writes (web UI, metrics). */
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";
import { hostname } from "node:os";

/** Why a request is refused: the reason, its status, and one line a user can act on. */
export interface Refusal {
  status: 403 | 415;
  reason: "host" | "origin" | "fetch-site" | "content-type";
  message: string;
}

/** Methods that change nothing; every other method is checked as a write. */
const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

export const isSafeMethod = (method: string | undefined): boolean => SAFE.has(method ?? "GET");

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];

/** What the caller sent, cut short: an error message must not carry a page of it. */
const quote = (v: string) => JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);

/**
 * A host and port as a browser puts them in a URL: lower case, IPv4 numbers in dotted form, IPv6
 * in brackets, no trailing dot, no port for 80. Undefined for anything that is not a bare host[:port].
 */
function canonical(hostPort: string): { host: string; port: string } | undefined {
  if (!/^[^\s/?#@\\]+$/.test(hostPort)) return undefined;
  try {
    const u = new URL(`http://${hostPort}`);
    return { host: u.hostname.replace(/\.$/, ""), port: u.port };
  } catch {
    return undefined;
  }
}

/** The host part of an address as a URL writes it: IPv6 in brackets. */
const urlHost = (address: string) => (isIP(address) === 6 ? `[${address}]` : address);

/** True for an address a listening socket can bind to that only this machine reaches. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The Host names the UI answers to, and the checks on writes.
 *
 * A DNS-rebinding page reaches the server under the attacker's own name, so the Host header must
 * name this server: the address it is bound to (as given and as resolved), with its port; bound to
 * loopback, also localhost, 127.0.0.1 and [::1]; bound to all interfaces (0.0.0.0 or ::), any IP
 * address, localhost and this machine's host name; bound to one other address or a name, that
 * address or name and this machine's host name. A browser never sends an attacker's name for those.
 */
export class RequestGuard {
  private readonly names = new Set<string>();
  private readonly anyIp: boolean;
  private readonly port: string;

  constructor(bindHost: string, boundAddress: string, port: number, machineName: string = hostname()) {
    this.port = port === 80 ? "" : String(port);
    const bind = canonical(urlHost(bindHost))?.host ?? bindHost.toLowerCase();
    const bound = canonical(urlHost(boundAddress))?.host ?? boundAddress;
    this.anyIp = bind === "0.0.0.0" || bind === "[::]" || bind === "";
    this.names.add(bind);
    this.names.add(bound);
    if (isLoopbackHost(bind) || isLoopbackHost(bound) || this.anyIp) {
      for (const n of LOOPBACK_NAMES) this.names.add(n);
    }
    if (!isLoopbackHost(bind) && !isLoopbackHost(bound)) {
      const machine = machineName.toLowerCase().replace(/\.$/, "");
      if (machine) {
        this.names.add(machine);
        this.names.add(machine.split(".")[0]!);
      }
    }
    this.names.delete("");
  }

  /** True if `header` (a Host header) names this server with its port. */
  hostAllowed(header: string | undefined): boolean {
    const c = header === undefined ? undefined : canonical(header);
    if (!c || c.port !== this.port) return false;
    if (this.names.has(c.host)) return true;
    return this.anyIp && (isIP(c.host) === 4 || c.host.startsWith("["));
  }

  /**
   * The Host check for every request, and for writes the checks that a page on another origin
   * fails: its Origin header, and the browser's Sec-Fetch-Site.
   */
  checkSite(req: IncomingMessage): Refusal | undefined {
    const host = req.headers.host;
    if (!this.hostAllowed(host)) {
      return {
        status: 403,
        reason: "host",
        message:
          host === undefined
            ? "refused: the request has no Host header"
            : `refused: the Host header ${quote(host)} does not name this server (DNS rebinding guard); use the address the UI printed`,
      };
    }
    if (isSafeMethod(req.method)) return undefined;
    const origin = req.headers.origin;
    if (origin !== undefined && !this.sameOrigin(origin, host!)) {
      return {
        status: 403,
        reason: "origin",
        message: `refused: a request from origin ${quote(origin)} may not change anything here (cross-site request guard)`,
      };
    }
    const site = req.headers["sec-fetch-site"];
    // "same-site" too: a page on another port of localhost is the same site but not this UI.
    if (site !== undefined && site !== "same-origin" && site !== "none") {
      return {
        status: 403,
        reason: "fetch-site",
        message: `refused: the browser marks this request as ${quote(String(site))} (cross-site request guard)`,
      };
    }
    return undefined;
  }

  /**
   * Writes must be JSON: a form or a no-cors fetch can only send text/plain, form or multipart
   * bodies without asking the server first, so requiring JSON shuts them out.
   */
  checkBody(req: IncomingMessage): Refusal | undefined {
    if (isSafeMethod(req.method)) return undefined;
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (type === "application/json") return undefined;
    return {
      status: 415,
      reason: "content-type",
      message:
        type === ""
          ? "refused: send the body as JSON with content-type: application/json"
          : `refused: the body is ${quote(type)}; send it as JSON with content-type: application/json`,
    };
  }

  /** The page's origin is the one the browser addressed: http:// and the Host header. */
  private sameOrigin(origin: string, host: string): boolean {
    if (!origin.startsWith("http://")) return false;
    const o = canonical(origin.slice("http://".length));
    const h = canonical(host);
    return o !== undefined && h !== undefined && o.host === h.host && o.port === h.port;
  }
}
