/**
 * One member of the chat room as the hub keeps it: its name, its rate
 * limit and its bounded outgoing queue, written in batches as its
 * connection takes them; a member that falls further behind is dropped.
 *
 * @module
 */
import {
  joinEvents,
  type LeaveReason,
  MAX_LIST_FRAME_BYTES,
  type WireFormat,
} from "./chat_wire.ts";

/** Most messages waiting for one member before it is dropped (gorilla's 256). */
export const DEFAULT_MAX_QUEUE = 256;
/** The byte equivalent: 256 messages of about 1 KiB (a 512-byte text in its envelope). */
export const DEFAULT_MAX_QUEUE_BYTES = 256 * 1024;

/** A member's connection as the hub sees it. */
export interface MemberSink {
  /** The encoding this member receives. */
  readonly format: WireFormat;
  /**
   * Hands bytes to the connection. A promise means "still writing": the
   * hub queues what comes meanwhile (bounded) and writes it in one batch.
   * A rejection means the connection is gone.
   */
  write(data: Uint8Array): Promise<void> | void;
  /** Bytes the connection holds that the peer has not taken yet (a WebSocket's `bufferedAmount`). */
  buffered?(): number;
  /** Closes the connection because the hub dropped the member; `reason` is for the peer. */
  close(reason: LeaveReason): void;
}

/** A token bucket: `rate` per second, at most `burst` at once. */
export class RateLimit {
  #tokens: number;
  #last: number;
  #rate: number;
  #burst: number;

  constructor(rate: number, burst: number, now: number) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = now;
  }

  take(now: number): boolean {
    if (this.#rate <= 0) return true;
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#rate / 1000);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/**
 * How often the hub looks whether connections without a drain event (a
 * WebSocket, see {@link MemberSink.buffered}) have taken their last write,
 * while some member has messages waiting. One timer for the whole hub.
 */
export const DRAIN_POLL_MS = 1;

/** One member of the room: its name, its connection, its outgoing queue. */
export class Member {
  /** Join order in this hub, from 1. */
  readonly id: number;
  readonly format: WireFormat;
  /** Whether it receives its own messages. */
  readonly echo: boolean;
  #name: string;
  #sink: MemberSink;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  /** Its connection tells it has taken a write only through `buffered()` (a WebSocket). */
  #polled: boolean;
  /** A polled connection may still hold the last write: nothing more is written until it drains. */
  #pending = false;
  /** A write returned a promise that has not settled. */
  #writing = false;
  #gone = false;
  #idle: Array<() => void> = [];
  #onFailure: (member: Member) => void;
  #onBacklog: (member: Member) => void;
  /** @internal The first of the room's held events it gets (it joined while some were held). */
  since = 0;
  /** The rate limit; refused is true while a refusal streak lasts (one notice per streak). */
  readonly limit: RateLimit;
  refusing = false;

  constructor(
    id: number,
    name: string,
    sink: MemberSink,
    echo: boolean,
    limit: RateLimit,
    hooks: { onFailure: (member: Member) => void; onBacklog: (member: Member) => void },
  ) {
    this.id = id;
    this.#name = name;
    this.#sink = sink;
    this.format = sink.format;
    this.#polled = sink.buffered !== undefined;
    this.echo = echo;
    this.limit = limit;
    this.#onFailure = hooks.onFailure;
    this.#onBacklog = hooks.onBacklog;
  }

  /** The name the room knows it by (the hub may change it on `/nick`). */
  get name(): string {
    return this.#name;
  }

  /** Whether it is still in the room. */
  get present(): boolean {
    return !this.#gone;
  }

  /** Messages waiting in its queue (not counting the batch being written). */
  get queued(): number {
    return this.#queue.length;
  }

  /** @internal Renames; only the hub calls this. */
  setName(name: string): void {
    this.#name = name;
  }

  /**
   * @internal Marks it gone; only the hub calls this. What is queued is
   * still written (a last notice) unless `discard` (a member dropped for
   * being slow, or whose connection failed).
   */
  remove(discard: boolean): void {
    this.#gone = true;
    if (discard) {
      this.#queue = [];
      this.#queuedBytes = 0;
    }
    if (discard || (!this.#writing && this.#queue.length === 0)) this.#settle();
  }

  /** Resolves once everything queued has been handed to the connection (or discarded). */
  flushed(): Promise<void> {
    if (!this.#writing && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #settle(): void {
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }

  /** @internal Closes its connection; only the hub calls this. */
  closeSink(reason: LeaveReason): void {
    try {
      this.#sink.close(reason);
    } catch {
      // Already closed.
    }
  }

  /**
   * Queues bytes for it; false when that would exceed a bound (the hub
   * then drops it).
   */
  send(bytes: Uint8Array, maxQueue: number, maxQueueBytes: number): boolean {
    if (this.#gone) return true;
    let buffered = 0;
    if (this.#pending) {
      // A call into the runtime, once per send at most, and only while the
      // last write may be pending.
      buffered = this.#sink.buffered!();
      this.#pending = buffered > 0;
    }
    if (!this.#writing && !this.#pending && this.#queue.length === 0) {
      this.#write(bytes);
      return true;
    }
    // The message bound is for connections that say when a write ends. A
    // polled socket is bounded by bytes only (queued and buffered, as when
    // every send went straight to the runtime): what the event loop reads in
    // one turn is broadcast before any socket can drain, so a message count
    // would drop readers that keep up with the room.
    if (this.#writing && this.#queue.length >= maxQueue) return false;
    if (buffered + this.#queuedBytes + bytes.byteLength > maxQueueBytes) return false;
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.byteLength;
    if (this.#polled) this.drain();
    return true;
  }

  /** @internal Writes a new member's welcome: its connection has nothing pending yet. */
  greet(bytes: Uint8Array): void {
    this.#write(bytes);
  }

  /**
   * @internal Writes what waits if its polled connection has taken the last
   * write (the hub's drain timer calls this); returns whether something
   * still waits.
   */
  drain(): boolean {
    if (this.#queue.length === 0 || this.#writing) return false;
    if (this.#pending) {
      if (this.#sink.buffered!() > 0) {
        this.#onBacklog(this);
        return true;
      }
      this.#pending = false;
    }
    this.#write(this.#batch(this.#polled ? MAX_LIST_FRAME_BYTES : Infinity));
    if (this.#queue.length === 0) {
      this.#settle();
      return false;
    }
    this.#onBacklog(this);
    return true;
  }

  /**
   * Takes queued events off the front as one write ({@link joinEvents}), at
   * most about `limit` bytes (Deno keeps a WebSocket's write buffer as
   * large as the largest frame it was sent, so a batch is cut like a list).
   */
  #batch(limit: number): Uint8Array {
    const queue = this.#queue;
    const gap = this.format === "json" ? 1 : 0;
    let count = 1;
    let size = queue[0].byteLength;
    while (count < queue.length && size + gap + queue[count].byteLength <= limit) {
      size += gap + queue[count].byteLength;
      count++;
    }
    const batch = joinEvents(count === queue.length ? queue : queue.slice(0, count), this.format);
    if (count === queue.length) this.#queue = [];
    else queue.splice(0, count);
    this.#queuedBytes -= size - gap * (count - 1);
    return batch;
  }

  #write(bytes: Uint8Array): void {
    let pending;
    try {
      pending = this.#sink.write(bytes);
    } catch {
      this.#onFailure(this);
      return;
    }
    if (pending) {
      this.#writing = true;
      pending.then(() => this.#next(), () => {
        this.#writing = false;
        this.#onFailure(this);
        this.#settle();
      });
    } else if (this.#polled) {
      this.#pending = true;
    }
  }

  /** Writes everything that queued up during the last write, in one batch. */
  #next(): void {
    this.#writing = false;
    if (this.#queue.length === 0) {
      this.#settle();
      return;
    }
    this.#write(this.#batch(Infinity));
  }
}
