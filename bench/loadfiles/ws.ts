import { constantPacing, task, WebSocketUser, type WsConnection } from "cicada-load";

/** WebSocket connections benchmark user: holds one connection, one round trip every 5 s. */
export class Holder extends WebSocketUser {
  static override waitTime = constantPacing(Number(process.env.WS_EVERY ?? 5));
  static override perMessageDeflate = process.env.WS_DEFLATE === "1";
  static override sourceAddresses = (process.env.WS_SOURCE_ADDRESSES ?? "").split(",").filter(Boolean);
  conn: WsConnection | undefined;

  override async onStart() {
    this.conn = await this.connect("/", { name: "echo", timeout: 30 });
  }

  @task
  async ping() {
    if (!this.conn?.open) this.stopUser();
    await this.conn.request("ping");
  }
}
