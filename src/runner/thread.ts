import { isMainThread, Worker as NodeWorker, parentPort, workerData } from "node:worker_threads";
import {
  type CoordinatorMessage,
  decodeMessage,
  encodeMessage,
  type Transport,
  type WorkerMessage,
} from "./protocol.js";
import { Worker } from "./worker.js";

/**
 * Worker threads. The coordinator starts one `node:worker_threads` Worker per share of the
 * users; each runs this file, which wraps the ordinary `Worker` (src/runner/worker.ts) around a
 * MessagePort transport. The thread has its own event loop, its own connections and its own
 * Recorder, and imports the already-bundled loadfile itself. Nothing is shared but messages.
 */

/** Marks a thread started by `startThreadWorker`, so importing this file elsewhere does nothing. */
const THREAD_MARK = "cicada.worker";

/** The part of MessagePort (and of a worker_threads Worker) a transport needs. */
interface Port {
  postMessage(value: unknown): void;
  on(event: "message", listener: (value: unknown) => void): unknown;
}

/**
 * A transport over a MessagePort (either end). Messages travel as their JSON text
 * (`encodeMessage`), exactly what a socket to a remote worker would carry, so nothing that only
 * structured clone could carry can slip into the protocol.
 */
export function portTransport<
  Out extends CoordinatorMessage | WorkerMessage,
  In extends CoordinatorMessage | WorkerMessage,
>(port: Port, onClose: () => void = () => {}): Transport<Out, In> & { readonly closed: boolean } {
  let closed = false;
  let handler: ((m: In) => void) | undefined;
  port.on("message", (text) => {
    if (!closed && typeof text === "string") handler?.(decodeMessage<In>(text));
  });
  return {
    get closed() {
      return closed;
    },
    send: (m) => {
      if (!closed) port.postMessage(encodeMessage(m));
    },
    onMessage: (h) => {
      handler = h;
    },
    close: () => {
      if (closed) return;
      closed = true;
      onClose();
    },
  };
}

/** Threads told to end that have not yet ended. */
const ending = new Set<Promise<unknown>>();

/**
 * Resolves once every worker thread told to end has ended, so that a caller that must leave
 * nothing running (the programmatic API) returns only then.
 */
export async function threadsEnded(): Promise<void> {
  await Promise.allSettled([...ending]);
}

/**
 * Starts a worker thread and returns the coordinator's end of its transport. `onLost` fires if
 * the thread ends before the coordinator closes the transport: a crash, or user code calling
 * `process.exit()` (which, in a thread, ends only that thread). `close()` terminates the
 * thread: by then it has sent `done`, or it is being given up on.
 */
export function startThreadWorker(id: string): Transport<CoordinatorMessage, WorkerMessage> {
  const thread = new NodeWorker(new URL("./thread.js", import.meta.url), {
    workerData: { [THREAD_MARK]: true, workerId: id },
  });
  let lostHandler: ((reason: string) => void) | undefined;
  let lastError: Error | undefined;
  const transport = portTransport<CoordinatorMessage, WorkerMessage>(thread, () => {
    const ended: Promise<unknown> = thread
      .terminate()
      .catch(() => undefined)
      .finally(() => ending.delete(ended));
    ending.add(ended);
  });
  thread.on("error", (err) => {
    lastError = err;
  });
  // A message that cannot be deserialized; cannot happen with strings, but never crash on it.
  thread.on("messageerror", (err) => {
    lastError = err;
  });
  thread.on("exit", (code) => {
    if (transport.closed) return;
    transport.close();
    const why = lastError
      ? `crashed: ${lastError.name}: ${lastError.message}`
      : `exited unexpectedly with code ${code}`;
    lostHandler?.(why);
  });
  return {
    send: (m) => transport.send(m),
    onMessage: (h) => transport.onMessage(h),
    onLost: (h) => {
      lostHandler = h;
    },
    close: () => transport.close(),
  };
}

// The thread's entry point.
if (!isMainThread && parentPort && (workerData as Record<string, unknown> | null)?.[THREAD_MARK] === true) {
  const port = parentPort;
  const transport = portTransport<WorkerMessage, CoordinatorMessage>(port, () => port.close());
  new Worker(transport);
}
