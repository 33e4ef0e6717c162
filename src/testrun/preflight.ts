import { connect } from "node:net";
import { TargetUnreachable, UsageError } from "../core/errors.js";

/**
 * Before any user starts, check that each target accepts TCP connections, so a typo in -H
 * gives one clear error instead of a run full of identical failures.
 */
export async function checkReachable(hostUrl: string, timeoutMs = 3000): Promise<void> {
  let u: URL;
  try {
    u = new URL(hostUrl);
  } catch {
    throw new UsageError(`invalid host URL "${hostUrl}" (expected e.g. http://127.0.0.1:8000)`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return;
  const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
  const host = u.hostname.replace(/^\[|\]$/g, "");
  await new Promise<void>((resolve, reject) => {
    const sock = connect({ host, port, timeout: timeoutMs });
    const fail = (why: string) => {
      sock.destroy();
      reject(new TargetUnreachable(`cannot reach ${u.origin}: ${why}`));
    };
    sock.once("connect", () => {
      sock.destroy();
      resolve();
    });
    sock.once("timeout", () => fail(`no answer within ${timeoutMs / 1000}s`));
    sock.once("error", (err: NodeJS.ErrnoException) => {
      const why =
        err.code === "ECONNREFUSED"
          ? "connection refused (is the server running?)"
          : err.code === "ENOTFOUND" || err.code === "EAI_AGAIN"
            ? "host name not found"
            : (err.code ?? err.message);
      fail(why);
    });
  });
}
