import { WsClient } from "../protocols/ws/client.js";
import type { WsConnection, WsConnectOptions } from "../protocols/ws/connection.js";
import { kAttach, kClose, type UserContext } from "./context.js";
import { User } from "./user.js";

/**
 * A user with WebSocket connections: `await this.connect(url)` opens one, `this.ws` is the
 * user's client. `static host` may be ws(s):// or http(s)://. Every connection still open is
 * closed when the user stops, and at the run's hard stop.
 */
export class WebSocketUser extends User {
  /** Verify TLS certificates of wss:// servers. */
  static verifyTls = true;
  /**
   * Offer permessage-deflate (default false): compression costs ~300 KB of zlib state per
   * connection. A connect's own `perMessageDeflate` option overrides it.
   */
  static perMessageDeflate = false;
  /**
   * Local addresses new connections bind to, in turn, e.g. ["127.0.0.1", "127.0.0.2"]: each
   * source address has its own ~28,000 ephemeral ports towards one target address and port.
   */
  static sourceAddresses: string[] = [];
  #ws: WsClient | undefined;

  override [kAttach](ctx: UserContext): void {
    super[kAttach](ctx);
    const cls = this.constructor as typeof WebSocketUser;
    this.#ws = new WsClient({
      recorder: ctx.recorder,
      signal: ctx.signal,
      baseUrl: ctx.host,
      verifyTls: ctx.verifyTls && cls.verifyTls,
      sourceAddresses: cls.sourceAddresses,
      perMessageDeflate: cls.perMessageDeflate,
    });
  }

  override async [kClose](force: boolean): Promise<void> {
    await super[kClose](force);
    await this.#ws?.closeAll();
  }

  /** This user's WebSocket client: `connect()`, `closeAll()`, `headers`. */
  get ws(): WsClient {
    if (!this.#ws) throw new Error("this.ws is available from onStart() on, not in the constructor");
    return this.#ws;
  }

  /**
   * Opens a connection (relative URLs resolve against the host). Resolves to undefined when it
   * failed — already recorded as a failure of "WS CONNECT name" — or the run stopped.
   */
  connect(url: string, options?: WsConnectOptions): Promise<WsConnection | undefined> {
    return this.ws.connect(url, options);
  }
}
