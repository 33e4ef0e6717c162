// --max-concurrency: at most N iterations of a worker in flight at once (its share of the run's
// N); an iteration that finds no free slot waits for one, first come, first served.

export class ConcurrencyGate {
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];
  private closed = false;

  constructor(public limit: number) {}

  /** A slot now (null: no wait), or a promise of one. Resolves at once after close(). */
  acquire(): Promise<void> | null {
    if (this.closed || this.inFlight < this.limit) {
      this.inFlight++;
      return null;
    }
    return new Promise((resolve) => {
      this.waiting.push(() => {
        this.inFlight++;
        resolve();
      });
    });
  }

  release(): void {
    this.inFlight--;
    while (this.inFlight < this.limit && this.waiting.length > 0) this.waiting.shift()!();
  }

  /** The run stops: every waiter goes on (to find the run stopping), and no one waits again. */
  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w();
  }
}
