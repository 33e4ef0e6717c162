/**
 * The loadfile the manifests ship: kustomize puts it in a ConfigMap that the master mounts at
 * /loadtest. Replace it with your own; the master bundles it and sends it to the workers.
 */
import { between, HttpUser, task } from "cicada-load";

export class ApiUser extends HttpUser {
  static override waitTime = between(1, 2);

  @task(3)
  async health() {
    await this.client.get("/health");
  }

  @task(1)
  async home() {
    await this.client.get("/");
  }
}
