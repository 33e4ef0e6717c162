import { constant, HttpUser, task } from "cicada-load";

/** The benchmark user: one GET, no wait. */
export class Getter extends HttpUser {
  static override waitTime = constant(0);

  @task
  async get() {
    await this.client.get("/");
  }
}
