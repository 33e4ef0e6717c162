// WebSocket endpoints of the demo server: an echo and a small chat that answers after a short
// "thinking" delay and now and then pushes a notice nobody asked for.

import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";

const PUSH_EVERY_MS = 2000;
/** Share of chat connections that get a pushed notice at each push round. */
const PUSH_SHARE = 0.2;
const REPLY_DELAY_MS: [number, number] = [10, 50];

/**
 * Serves WebSocket echo at `/ws/echo` and a chat at `/ws/chat` on `server`: a message
 * `{"id", "type": "chat", "text"}` is answered by `{"id", "type": "reply", "text"}` after
 * 10–50 ms, and every 2 s about one chat connection in five gets `{"type": "notice", "text"}`.
 * `server.close()` then also ends the WebSocket connections.
 */
export function attachWebSocketDemo(server: Server): void {
  // Compression off: it costs ~300 KB per connection on this side too.
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const chats = new Set<WebSocket>();
  let push: NodeJS.Timeout | undefined;

  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/ws/echo" && path !== "/ws/chat") {
      // Other upgrade handlers may serve other paths; alone, refuse.
      if (server.listenerCount("upgrade") === 1) {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      }
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => (path === "/ws/echo" ? echo(ws) : chat(ws)));
  });

  function echo(ws: WebSocket): void {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  }

  function chat(ws: WebSocket): void {
    chats.add(ws);
    ws.on("close", () => chats.delete(ws));
    push ??= setInterval(pushNotices, PUSH_EVERY_MS).unref();
    ws.on("message", (data, isBinary) => {
      let msg: { id?: unknown; type?: unknown; text?: unknown };
      try {
        msg = isBinary ? {} : (JSON.parse(data.toString()) as typeof msg);
      } catch {
        ws.send(JSON.stringify({ type: "error", text: "messages are JSON objects" }));
        return;
      }
      if (msg === null || typeof msg !== "object" || msg.type !== "chat") {
        ws.send(
          JSON.stringify({ id: msg?.id ?? null, type: "error", text: 'expected {"type": "chat", ...}' }),
        );
        return;
      }
      const [lo, hi] = REPLY_DELAY_MS;
      const text = typeof msg.text === "string" ? msg.text : "";
      const id = msg.id ?? null;
      setTimeout(
        () => {
          if (ws.readyState === ws.OPEN) {
            ws.send(JSON.stringify({ id, type: "reply", text: `You said: ${text.slice(0, 1000)}` }));
          }
        },
        lo + Math.random() * (hi - lo),
      ).unref();
    });
  }

  function pushNotices(): void {
    if (chats.size === 0) {
      clearInterval(push);
      push = undefined;
      return;
    }
    const at = new Date().toISOString();
    for (const ws of chats) {
      if (Math.random() < PUSH_SHARE) ws.send(JSON.stringify({ type: "notice", text: `server time ${at}` }));
    }
  }

  // Upgraded sockets keep server.close() waiting until they end: end them when it is called.
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    clearInterval(push);
    push = undefined;
    for (const ws of wss.clients) ws.terminate();
    return close(cb);
  }) as typeof server.close;
}
