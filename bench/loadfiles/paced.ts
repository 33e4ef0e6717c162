import { constantPacing, HttpUser, task } from "cicada-load";

/** Latency benchmark user: one GET every 10 ms, so 10 users make about 1,000 requests/s. */
export class Paced extends HttpUser {
  static override waitTime = constantPacing(0.01);

  @task
  async get() {
    await this.client.get("/");
  }
}
