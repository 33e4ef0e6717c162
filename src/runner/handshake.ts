/**
 * The greeting on a master↔worker connection, before any plan: both sides' protocol versions,
 * the shared token proved both ways by HMAC over fresh nonces, and the limits on a peer that has
 * not proved anything yet.
 *
 *   worker → master  hello     { version, pid, cores, nonce: Nw }
 *   master → worker  challenge { version, nonce: Nm, token }   or refused { reason }
 *   worker → master  auth      { proof: HMAC(token, "worker" context) }   or bye { reason }
 *   master → worker  welcome   { proof: HMAC(token, "master" context) }   or refused { reason }
 *
 * The worker proves first, so the master hands out nothing derived from the token to a peer that
 * does not know it; the worker then checks the master's proof before it takes any plan, so a fake
 * master cannot make it run code. Each proof covers both nonces, both versions and its direction:
 * it cannot be replayed on another connection nor reflected as the other side's. The token itself
 * never crosses the wire.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { UsageError } from "../core/errors.js";
import { PROTOCOL_VERSION } from "./protocol.js";

export type WorkerGreeting =
  /** `cores`: the CPUs of the worker's machine; the master splits users in proportion to them. */
  | { type: "hello"; workerId: string; version: number; pid: number; cores?: number; nonce: string }
  | { type: "auth"; proof?: string }
  | { type: "bye"; reason: string };

export type MasterGreeting =
  | { type: "challenge"; version: number; nonce: string; token: boolean }
  | { type: "welcome"; proof?: string }
  | { type: "refused"; reason: string };

/** Most characters a greeting line may have: every greeting is far smaller. */
export const GREETING_MAX_LINE = 16 * 1024;
/** Greeting messages a peer may send ahead of the answers it waits for. */
export const GREETING_MAX_QUEUED = 4;

/** The reading end the greeting needs: the next message, or why the connection went away. */
export interface GreetingChannel<Out, In> {
  send(m: Out): void;
  /** `last`: the greeting's last message; what follows it is read with the limits of a peer that passed. */
  next(last?: boolean): Promise<In>;
}

/** A greeting that failed: `reason` is one line for the log; `refusal` marks a deliberate no. */
export class GreetingFailed extends Error {
  constructor(
    message: string,
    readonly refusal: boolean,
  ) {
    super(message);
  }
}

const NONCE = /^[0-9a-f]{64}$/;

const nonce = () => randomBytes(32).toString("hex");

function proof(token: string, side: "worker" | "master", nm: string, nw: string, v: number): string {
  return createHmac("sha256", token)
    .update(`cicada ${side} proof; protocol ${v}/${v}; master nonce ${nm}; worker nonce ${nw}`)
    .digest("hex");
}

function sameProof(got: unknown, want: string): boolean {
  if (typeof got !== "string" || !NONCE.test(got)) return false;
  return timingSafeEqual(Buffer.from(got, "hex"), Buffer.from(want, "hex"));
}

/** Text from a peer for one log line: no control characters, no novel. */
export function printable(text: unknown, max = 200): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  const s = String(text).replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Rejects after `ms` with `what()` (evaluated then, so it names the step that was waited on). */
function deadline<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new GreetingFailed(what(), false)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The master's side. Resolves once the peer proved it is a worker of this protocol version that
 * knows the token (when the master has one); throws a GreetingFailed naming why otherwise. The
 * caller drops the connection on failure and gives nothing else to the peer.
 */
export async function greetWorker(
  ch: GreetingChannel<MasterGreeting, WorkerGreeting>,
  opts: { token: string | undefined; timeoutMs: number },
): Promise<{ pid: number; cores: number }> {
  const secs = `${opts.timeoutMs / 1000}s`;
  let waitingFor = `no hello within ${secs}`;
  return deadline(
    (async () => {
      const hello = await ch.next();
      if (hello.type !== "hello") throw new GreetingFailed("it did not say hello", false);
      if (hello.version !== PROTOCOL_VERSION) {
        const reason = `it speaks protocol version ${printable(hello.version, 20)}, this master speaks ${PROTOCOL_VERSION} (run the same Cicada version on both)`;
        ch.send({
          type: "refused",
          reason: `this master speaks protocol version ${PROTOCOL_VERSION}, this worker ${printable(hello.version, 20)} (run the same Cicada version on both)`,
        });
        throw new GreetingFailed(reason, true);
      }
      if (typeof hello.nonce !== "string" || !NONCE.test(hello.nonce)) {
        throw new GreetingFailed("its hello has no valid nonce", false);
      }
      const nm = nonce();
      ch.send({ type: "challenge", version: PROTOCOL_VERSION, nonce: nm, token: opts.token !== undefined });
      waitingFor = `no answer to the challenge within ${secs}`;
      const answer = await ch.next(true);
      if (answer.type === "bye") {
        throw new GreetingFailed(`it refused this master: ${printable(answer.reason)}`, true);
      }
      if (answer.type !== "auth") throw new GreetingFailed("it did not answer the challenge", false);
      if (opts.token !== undefined) {
        if (answer.proof === undefined) {
          ch.send({ type: "refused", reason: "this master requires a token" });
          throw new GreetingFailed("it gave no token (this master requires one)", true);
        }
        if (!sameProof(answer.proof, proof(opts.token, "worker", nm, hello.nonce, PROTOCOL_VERSION))) {
          ch.send({ type: "refused", reason: "wrong token" });
          throw new GreetingFailed("wrong token", true);
        }
      }
      ch.send({
        type: "welcome",
        ...(opts.token !== undefined
          ? { proof: proof(opts.token, "master", nm, hello.nonce, PROTOCOL_VERSION) }
          : {}),
      });
      return {
        pid: typeof hello.pid === "number" ? hello.pid : 0,
        // Whatever the peer wrote, a whole number of at least one.
        cores: Math.max(1, Math.floor(Number(hello.cores) || 1)),
      };
    })(),
    opts.timeoutMs,
    () => waitingFor,
  );
}

/**
 * The worker's side. Resolves once the master accepted this worker and, when this worker has a
 * token, proved it knows it too; only then may a plan be taken from it.
 */
export async function greetMaster(
  ch: GreetingChannel<WorkerGreeting, MasterGreeting>,
  opts: { token: string | undefined; timeoutMs: number },
): Promise<void> {
  const secs = `${opts.timeoutMs / 1000}s`;
  let waitingFor = `the master did not answer the hello within ${secs}`;
  const refusedBy = (m: MasterGreeting): never => {
    if (m.type === "refused") {
      throw new GreetingFailed(`the master refused this worker: ${printable(m.reason)}`, true);
    }
    throw new GreetingFailed(`the master sent "${printable(m.type, 40)}" during the greeting`, false);
  };
  return deadline(
    (async () => {
      const nw = nonce();
      ch.send({
        type: "hello",
        workerId: "",
        version: PROTOCOL_VERSION,
        pid: process.pid,
        cores: availableParallelism(),
        nonce: nw,
      });
      const challenge = await ch.next();
      if (challenge.type !== "challenge") return refusedBy(challenge);
      if (challenge.version !== PROTOCOL_VERSION) {
        const reason = `the master speaks protocol version ${printable(challenge.version, 20)}, this worker ${PROTOCOL_VERSION} (run the same Cicada version on both)`;
        ch.send({ type: "bye", reason: `this worker speaks protocol version ${PROTOCOL_VERSION}` });
        throw new GreetingFailed(reason, true);
      }
      if (typeof challenge.nonce !== "string" || !NONCE.test(challenge.nonce)) {
        throw new GreetingFailed("the master's challenge has no valid nonce", false);
      }
      if (challenge.token && opts.token === undefined) {
        ch.send({ type: "bye", reason: "it has no token" });
        throw new GreetingFailed(
          "the master requires a token: give this worker the master's with --token, CICADA_TOKEN or --token-file",
          true,
        );
      }
      if (!challenge.token && opts.token !== undefined) {
        // A master without a token cannot prove who it is: it may not be the one meant.
        ch.send({ type: "bye", reason: "this worker has a token and the master has none" });
        throw new GreetingFailed(
          "the master has no token, so it cannot prove it is the one this worker's token is for; give it the same --token",
          true,
        );
      }
      ch.send({
        type: "auth",
        ...(opts.token !== undefined
          ? { proof: proof(opts.token, "worker", challenge.nonce, nw, PROTOCOL_VERSION) }
          : {}),
      });
      waitingFor = `the master did not answer the token within ${secs}`;
      const welcome = await ch.next(true);
      if (welcome.type !== "welcome") return refusedBy(welcome);
      if (
        opts.token !== undefined &&
        !sameProof(welcome.proof, proof(opts.token, "master", challenge.nonce, nw, PROTOCOL_VERSION))
      ) {
        throw new GreetingFailed(
          "the master could not prove it knows this worker's token: not the master meant, or another token",
          true,
        );
      }
    })(),
    opts.timeoutMs,
    () => waitingFor,
  );
}

/**
 * The token from `--token`/`CICADA_TOKEN` or `--token-file`/`CICADA_TOKEN_FILE`, checked as
 * `parse` checks a flag's value. A file holds the token alone: surrounding whitespace is dropped.
 */
export function resolveToken(
  s: { token?: string | undefined; tokenFile?: string | undefined },
  parse: (v: unknown, name: string) => string,
): string | undefined {
  if (s.token !== undefined && s.tokenFile !== undefined) {
    throw new UsageError(
      "give the token once: --token (CICADA_TOKEN) or --token-file (CICADA_TOKEN_FILE), not both",
    );
  }
  if (s.tokenFile === undefined) return s.token;
  let text: string;
  try {
    text = readFileSync(s.tokenFile, "utf8");
  } catch (err) {
    throw new UsageError(`--token-file ${s.tokenFile}: cannot read it: ${(err as Error).message}`);
  }
  return parse(text, `--token-file ${s.tokenFile}`);
}

/** A PEM file for TLS, read now so a wrong path is a usage error naming the flag. */
export function readPem(flag: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`${flag} ${path}: cannot read it: ${(err as Error).message}`);
  }
}
