import { constantThroughput, HttpUser, task } from "cicada-load";

/** The multi-core benchmark's user: one GET, paced to BENCH_USER_RATE requests a second (200 when unset). */
export class Rated extends HttpUser {
  static override waitTime = constantThroughput(Number(process.env.BENCH_USER_RATE ?? 200));

  @task
  async get() {
    await this.client.get("/");
  }
}
