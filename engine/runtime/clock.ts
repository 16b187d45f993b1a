/** The runtime's only source of time. Everything else receives "now" as a value. */
export interface Clock {
  now(): number;
}

/** The one place the wall clock is read. */
export const systemClock: Clock = { now: () => Date.now() };

/** Virtual time for the simulator and tests: moves only when told to. */
export class VirtualClock implements Clock {
  constructor(private t: number) {}
  now(): number {
    return this.t;
  }
  set(t: number): void {
    if (t < this.t) throw new Error('virtual time cannot go backwards');
    this.t = t;
  }
  advance(ms: number): void {
    this.set(this.t + ms);
  }
}
