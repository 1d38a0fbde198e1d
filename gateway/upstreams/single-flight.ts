/** One attempt shared by concurrent callers; after a failure the next caller starts a new one. */
export class SingleFlight {
  #current: Promise<void> | undefined;

  /** The attempt in flight, if any (to await on close). */
  get current(): Promise<void> | undefined {
    return this.#current;
  }

  run(attempt: () => Promise<void>): Promise<void> {
    if (this.#current !== undefined) return this.#current;
    const started = attempt();
    this.#current = started;
    started.catch(() => {
      if (this.#current === started) this.#current = undefined;
    });
    return started;
  }
}
