/** Cicada's folders in the OS temp folder: made private, removed at exit, and swept when their process died. */
import { createHash, randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";

/** What a folder holds, in its name: "" a bundled loadfile, "worker" a master's shipped bundle, "quick" a generated loadfile. */
export type TempKind = "" | "worker" | "quick";

/**
 * Exactly the names `makeTempDir` gives (and those of versions before the host token); nothing
 * else in the temp folder is ever touched.
 */
const OURS = /^cicada-(?:(?:worker|quick)-)?([1-9]\d{0,9})-(?:([0-9a-f]{8})-)?[0-9a-f]{8}$/;

function pidNamespace(): string {
  try {
    return readlinkSync("/proc/self/ns/pid");
  } catch {
    return "";
  }
}

/**
 * This host and PID namespace, in every folder's name: a temp folder shared with other
 * containers or machines (one volume mounted at /tmp) holds folders whose PIDs mean nothing
 * here, and those are never swept.
 */
const HOST = createHash("sha256").update(`${hostname()}\0${pidNamespace()}`).digest("hex").slice(0, 8);

/** A folder whose process is gone is left alone this long: its name may be in the middle of being read. */
const STALE_AFTER_MS = 60_000;

/** Folders of this process still to remove, should it exit before their owner does. */
const live = new Set<string>();

function removeLive(): void {
  for (const dir of live) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {}
  }
  live.clear();
}

/**
 * A new folder `cicada-[KIND-]PID-HOST-HEX` in the OS temp folder, readable by this user only (a bundle
 * may hold secrets written into a loadfile). Stale folders of crashed or killed Cicada processes
 * are removed first; this one is removed by `removeTempDir`, or at the latest when the process
 * exits (signals that are not handled and SIGKILL leave it to the next sweep).
 */
export function makeTempDir(kind: TempKind): string {
  sweepStaleTempDirs();
  const dir = join(
    tmpdir(),
    `cicada-${kind ? `${kind}-` : ""}${process.pid}-${HOST}-${randomBytes(4).toString("hex")}`,
  );
  // Not recursive: a name that already exists (however unlikely) fails rather than being reused.
  mkdirSync(dir, { mode: 0o700 });
  if (live.size === 0) process.once("exit", removeLive);
  live.add(dir);
  return dir;
}

/** Removes a folder of `makeTempDir`. */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  live.delete(dir);
  if (live.size === 0) process.off("exit", removeLive);
}

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    // EPERM: alive, under another user.
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/**
 * Removes the temp folders left by Cicada processes that no longer run (killed with SIGKILL, or
 * a crash): only names of Cicada's own pattern made on this host and PID namespace (or by a
 * version that did not say), real folders (never a symlink), of this user, untouched for a
 * minute, whose PID is gone. Errors are ignored: another Cicada may be sweeping
 * the same folder at the same time.
 */
export function sweepStaleTempDirs(): void {
  const root = tmpdir();
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    const m = OURS.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid) continue;
    if (m[2] !== undefined && m[2] !== HOST) continue;
    try {
      const path = join(root, name);
      const st = lstatSync(path);
      if (!st.isDirectory()) continue;
      if (uid !== undefined && st.uid !== uid) continue;
      if (Date.now() - st.mtimeMs < STALE_AFTER_MS) continue;
      if (!processGone(pid)) continue;
      rmSync(path, { recursive: true, force: true });
    } catch {}
  }
}
