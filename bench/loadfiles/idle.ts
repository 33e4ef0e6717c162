import { between, HttpUser, task } from "cicada-load";

/** Memory benchmark user: one GET, then 1–3 s asleep, holding its keep-alive connection. */
export class Idler extends HttpUser {
  static override waitTime = between(1, 3);
  static override sharedConnections = Number(process.env.BENCH_SHARED_CONNECTIONS ?? 0);

  @task
  async get() {
    await this.client.get("/");
  }
}
