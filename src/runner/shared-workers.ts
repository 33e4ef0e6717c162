// Remote workers shared by the scenarios of one run: each connection carries one channel per scenario.
import type { RemoteWorkerLink, RemoteWorkerSource } from "./coordinator.js";
import type { CoordinatorMessage, OnChannel, Transport, WorkerMessage } from "./protocol.js";

/** One worker connection split into channels. */
class SharedLink {
  private readonly handlers = new Map<number, (m: WorkerMessage) => void>();
  private readonly lostHandlers = new Map<number, (reason: string) => void>();
  /** Why the connection ended, once it has. */
  lost: string | undefined;

  constructor(readonly link: RemoteWorkerLink) {
    link.transport.onMessage((m) => {
      const ch = (m as OnChannel<WorkerMessage>).ch;
      // The connection's own heartbeats mean "still alive" to every channel; its resource
      // samples go to every scenario, stamped once so that the run-wide book keeps them once.
      if (m.type === "resources") m.receivedAt = Date.now();
      if (ch === undefined) for (const h of this.handlers.values()) h(m);
      else this.handlers.get(ch)?.(m);
    });
    link.transport.onLost?.((reason) => {
      this.lost = reason;
      for (const h of this.lostHandlers.values()) h(reason);
      this.lostHandlers.clear();
    });
  }

  /** The link as one scenario's coordinator sees it: a worker of its own. */
  channel(ch: number): RemoteWorkerLink {
    let open = true;
    const transport: Transport<CoordinatorMessage, WorkerMessage> = {
      send: (m) => {
        const tagged: OnChannel<CoordinatorMessage> = { ...m, ch };
        if (open) this.link.transport.send(tagged);
      },
      onMessage: (h) => {
        this.handlers.set(ch, h);
      },
      onLost: (h) => {
        const why = this.lost;
        if (why !== undefined) queueMicrotask(() => h(why));
        else this.lostHandlers.set(ch, h);
      },
      close: () => {
        if (!open) return;
        // The worker lets go of this scenario's thread; the connection stays for the others.
        const bye: OnChannel<CoordinatorMessage> = { type: "close", ch };
        this.link.transport.send(bye);
        open = false;
        this.handlers.delete(ch);
        this.lostHandlers.delete(ch);
      },
    };
    return { ...this.link, transport };
  }
}

/** The workers one scenario has not been given yet. */
class ScenarioWorkers implements RemoteWorkerSource {
  private readonly queue: SharedLink[] = [];
  private joined: (() => void) | undefined;

  constructor(
    private readonly ch: number,
    readonly heartbeatTimeoutMs: number,
  ) {}

  offer(link: SharedLink): void {
    this.queue.push(link);
    this.joined?.();
  }

  take(): RemoteWorkerLink | undefined {
    for (let next = this.queue.shift(); next; next = this.queue.shift()) {
      if (next.lost === undefined) return next.channel(this.ch);
    }
    return undefined;
  }

  onJoin(listener: (() => void) | undefined): void {
    this.joined = listener;
    if (listener && this.queue.length > 0) listener();
  }
}

/**
 * Every scenario runs on every connected worker, as k6 spreads each scenario over its
 * instances: a scenario's users are split over all the machines, not one machine per scenario.
 * A worker that joins mid-run gets a share of each scenario that runs then or starts later.
 */
export class SharedWorkers {
  private readonly links: SharedLink[] = [];
  private readonly scenarios: ScenarioWorkers[] = [];

  constructor(private readonly base: RemoteWorkerSource) {}

  /** Takes the workers connected now, and those that connect until `close()`. */
  start(): void {
    this.base.onJoin(() => {
      for (let l = this.base.take(); l; l = this.base.take()) {
        const shared = new SharedLink(l);
        this.links.push(shared);
        for (const s of this.scenarios) s.offer(shared);
      }
    });
  }

  /** The workers of the scenario numbered `ch` (each scenario its own number). */
  forScenario(ch: number): RemoteWorkerSource {
    const s = new ScenarioWorkers(ch, this.base.heartbeatTimeoutMs);
    for (const l of this.links) if (l.lost === undefined) s.offer(l);
    this.scenarios.push(s);
    return s;
  }

  /** The run is over: every connection ends, and its worker waits for the next test. */
  close(): void {
    this.base.onJoin(undefined);
    for (const l of this.links) l.link.transport.close();
  }
}
