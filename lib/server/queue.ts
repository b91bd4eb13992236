// Admission control: at most `limit` generation requests are waiting or running at once; one
// more is refused (429) instead of piling up. The engine itself queues what the KV cache cannot
// hold yet, so a ticket is "waiting" until its first token arrives and "running" after that.
export class Admission {
  private waitingCount = 0;
  private runningCount = 0;
  private readonly controllers = new Set<AbortController>();
  private readonly idleWaiters = new Set<() => void>();

  constructor(readonly limit: number) {}

  /** Requests admitted and not finished. */
  get inFlight(): number {
    return this.waitingCount + this.runningCount;
  }

  /** Admitted requests without a first token yet (queued in the engine or prefilling). */
  get waiting(): number {
    return this.waitingCount;
  }

  get running(): number {
    return this.runningCount;
  }

  /** A ticket, or undefined when the queue is full. */
  tryAcquire(controller: AbortController): Ticket | undefined {
    if (this.inFlight >= this.limit) return undefined;
    this.waitingCount++;
    this.controllers.add(controller);
    let state: 'waiting' | 'running' | 'released' = 'waiting';
    return {
      started: () => {
        if (state !== 'waiting') return;
        state = 'running';
        this.waitingCount--;
        this.runningCount++;
      },
      release: () => {
        if (state === 'released') return;
        if (state === 'waiting') this.waitingCount--;
        else this.runningCount--;
        state = 'released';
        this.controllers.delete(controller);
        if (this.inFlight === 0) for (const w of [...this.idleWaiters]) w();
      },
    };
  }

  /** Resolves when nothing is in flight, or after timeoutMs. */
  idle(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.idleWaiters.add(done);
    });
  }

  /** Aborts every admitted request (server shutdown). */
  abortAll(reason: unknown): void {
    for (const c of this.controllers) c.abort(reason);
  }
}

export interface Ticket {
  /** The first token arrived. */
  started(): void;
  /** Finished, failed or aborted; idempotent. */
  release(): void;
}
