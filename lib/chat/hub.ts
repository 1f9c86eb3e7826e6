/**
 * The chat room: one {@link ChatHub} owns the members and alone changes
 * them (gorilla's hub), whatever transport they came by. Transports call
 * `join`, `leave`, `broadcast`; the hub names members (a taken name gets a
 * suffix), stamps every message with the server's time and the sender's
 * name, announces joins and leaves, limits each member's rate, and keeps
 * slow members from slowing the room: each member has a bounded outgoing
 * queue, and one that falls further behind is dropped with a notice.
 *
 * A broadcast is encoded once per wire format (JSON for WebSocket, a text
 * line for TCP), not once per member, and the same bytes go to everyone.
 *
 * Several hubs (one per server instance) can form one room through a
 * {@link HubBus}: the hub publishes what happens locally and
 * {@link ChatHub.receive} takes what happened elsewhere; remote members are
 * listed and their names are taken. The bus itself lives outside.
 *
 * @module
 */
import { NameMap } from "../text/names.ts";
import { chatTime, checkName, cleanMessage, escapeControls, MessageError } from "./chat_text.ts";

/** Most messages waiting for one member before it is dropped (gorilla's 256). */
export const DEFAULT_MAX_QUEUE = 256;
/** The byte equivalent: 256 messages of about 1 KiB (a 512-byte text in its envelope). */
export const DEFAULT_MAX_QUEUE_BYTES = 256 * 1024;
/** Messages a member may send per second, sustained. */
export const DEFAULT_RATE = 10;
/** Messages a member may send at once (a pasted paragraph) before the rate applies. */
export const DEFAULT_BURST = 20;
/** Joins and leaves within this window go out as one announcement, so a crowd joining costs O(n). */
export const DEFAULT_PRESENCE_DELAY_MS = 50;
/**
 * About the longest frame the hub makes of a list a member asked for (the
 * whole room, `/who`) or of a backlog; a longer one goes out over several
 * frames. Deno keeps a write buffer per WebSocket as large as the largest
 * frame it has sent it, so one 20 KB welcome to each of 2000 members held
 * 40 MB.
 */
export const MAX_LIST_FRAME_BYTES = 2048;
/**
 * About the longest list every member gets unasked: the names in a
 * welcome, the changes in one announcement of joins and leaves (the rest
 * are counted, and `/who` gives the whole room). Measured with 2000 idle
 * members joining at once: lists of 2 KiB, several frames per
 * announcement, cost each member 7 KB (write buffers, and the churn of
 * queued frames); lists of 512 bytes, one frame per announcement, 2 KB.
 */
export const MAX_UNASKED_LIST_BYTES = 512;

/** How a member receives the room: JSON objects (WebSocket) or text lines (TCP). */
export type WireFormat = "json" | "line";

/** Why a member left. */
export type LeaveReason =
  | "quit"
  | "disconnected"
  | "timed out"
  | "too slow"
  | "server shutdown"
  | "instance lost";

/** One change in who is in the room. */
export type PresenceChange =
  | { event: "join"; name: string }
  | { event: "leave"; name: string; reason: LeaveReason }
  | { event: "rename"; from: string; name: string };

/** Changes of one announcement that were counted, not listed. */
export interface PresenceMore {
  joined: number;
  left: number;
  renamed: number;
}

/**
 * What a member receives, before encoding. `time` is `2006-01-02 15:04:05`,
 * `ts` ms since the epoch, `count` everyone in the room. A WebSocket
 * member's welcome lists the first names (sorted) up to about
 * {@link MAX_UNASKED_LIST_BYTES}, and an announcement the changes up to
 * that size, counting the rest in `more`; the whole room comes on request
 * (`/who`) as `members` events of about {@link MAX_LIST_FRAME_BYTES},
 * `offset` being the number of names sent before (0 starts the list) and
 * `end` marking the last (in a room too large for a quarter of the member's
 * queue bound, it lists fewer than `count`). TCP members get one welcome
 * line with up to 100 names.
 */
export type ChatEvent =
  | {
    type: "welcome";
    time: string;
    ts: number;
    name: string;
    requested: string;
    members: string[];
    count: number;
  }
  | {
    type: "members";
    time: string;
    ts: number;
    members: string[];
    offset: number;
    count: number;
    end?: true;
  }
  | { type: "message"; time: string; ts: number; name: string; text: string }
  | {
    type: "presence";
    time: string;
    ts: number;
    changes: PresenceChange[];
    more?: PresenceMore;
    count: number;
  }
  | { type: "notice"; time: string; ts: number; level: "info" | "error"; text: string };

/** What hubs tell each other through a {@link HubBus}; `origin` names the hub that saw it happen. */
export type BusEvent =
  | { type: "join"; origin: string; ts: number; name: string }
  | { type: "leave"; origin: string; ts: number; name: string; reason: LeaveReason }
  | { type: "rename"; origin: string; ts: number; from: string; name: string }
  | { type: "message"; origin: string; ts: number; name: string; text: string }
  | { type: "roster"; origin: string; ts: number; names: string[] };

/**
 * Carries events between hubs of one room on several instances (a later
 * RabbitMQ fan-out exchange, for instance). The hub calls `publish` for
 * every local join, leave, rename and message; the bus calls
 * {@link ChatHub.receive} on the other hubs, and {@link ChatHub.forget}
 * when an instance is gone. A new hub can ask the others for
 * {@link ChatHub.roster} to learn who is already there.
 */
export interface HubBus {
  /** Sends an event to the other hubs; must not throw or block. */
  publish(event: BusEvent): void;
}

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

/** Options for {@link ChatHub.join}. */
export interface JoinOptions {
  /** Whether the member receives its own messages back. Default true. */
  echo?: boolean;
}

/** Options for {@link ChatHub}. */
export interface HubOptions {
  /** Most messages queued for one member before it is dropped. Default 256. */
  maxQueue?: number;
  /** Most bytes queued (or buffered by its connection) for one member. Default 256 KiB. */
  maxQueueBytes?: number;
  /** Longest message in UTF-8 bytes, after newlines become spaces and ends are trimmed. Default 512. */
  maxMessageBytes?: number;
  /** Messages per second one member may send, sustained; 0 for no limit. Default 10. */
  rate?: number;
  /** Messages one member may send at once. Default 20. */
  burst?: number;
  /** Joins and leaves are gathered this long into one announcement; 0 sends each at once. Default 50. */
  presenceDelayMs?: number;
  /** This hub's name on the bus. Default a random id. */
  instanceId?: string;
  /** Where local events go to reach other instances. Default none. */
  bus?: HubBus;
  /** Called on each join, leave and drop, for the server's log. */
  onLog?: (line: string) => void;
  /** The clock. Default `Date.now`. */
  now?: () => number;
}

const encoder = new TextEncoder();
const NEWLINE = 0x0a;

/** An event encoded at most once per wire format, the same bytes for every member. */
class Frame {
  readonly event: ChatEvent;
  #json: Uint8Array | null = null;
  #line: Uint8Array | null = null;

  constructor(event: ChatEvent) {
    this.event = event;
  }

  bytes(format: WireFormat): Uint8Array {
    if (format === "json") return this.#json ??= encoder.encode(JSON.stringify(this.event));
    return this.#line ??= encoder.encode(formatLines(this.event));
  }
}

/** Renders an event as the TCP lines of seed 001: `2006-01-02 15:04:05 NAME: text`. */
export function formatLines(event: ChatEvent): string {
  switch (event.type) {
    case "message":
      return `${event.time} ${event.name}: ${escapeControls(event.text)}\n`;
    case "presence": {
      const lines = event.changes.map((c) => `${event.time} * ${describeChange(c)}\n`).join("");
      return event.more ? `${lines}${event.time} * and ${describeMore(event.more)}\n` : lines;
    }
    case "notice":
      return `${event.level === "error" ? "ERROR" : "*"} ${escapeControls(event.text)}\n`;
    case "members":
      return event.offset === 0 ? `* ${onlineText(event.members, event.count)}\n` : "";
    case "welcome": {
      const given = event.name === event.requested
        ? ""
        : ` ("${escapeControls(event.requested)}" is taken)`;
      return `* Welcome, ${event.name}${given}. ${onlineText(event.members)}\n`;
    }
  }
}

/** `alice joined`, `bob left (timed out)`, `carol is now known as caz`. */
export function describeChange(change: PresenceChange): string {
  switch (change.event) {
    case "join":
      return `${change.name} joined`;
    case "leave":
      return change.reason === "quit"
        ? `${change.name} left`
        : `${change.name} left (${change.reason})`;
    case "rename":
      return `${change.from} is now known as ${change.name}`;
  }
}

/** `40 more joined, 3 more left` (the changes an announcement counted). */
export function describeMore(more: PresenceMore): string {
  return [
    more.joined ? `${more.joined} more joined` : "",
    more.left ? `${more.left} more left` : "",
    more.renamed ? `${more.renamed} more changed their name` : "",
  ].filter(Boolean).join(", ");
}

/** Most names listed in one `/who` answer; the rest are counted. */
const MAX_LISTED = 100;

/** `3 online: alice, bob, carol` (at most 100 names, then `and N more`). */
export function onlineText(names: readonly string[], count = names.length): string {
  const listed = names.slice(0, MAX_LISTED).join(", ");
  const more = count > MAX_LISTED ? `, and ${count - Math.min(MAX_LISTED, names.length)} more` : "";
  return `${count} online: ${listed}${more}`;
}

/**
 * Splits a list into runs whose JSON is about `limit` bytes at most, by an
 * estimate of each item's length; always at least one run.
 */
function splitList<T>(items: T[], length: (item: T) => number, limit: number): T[][] {
  const runs: T[][] = [];
  let run: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const n = length(item);
    if (run.length > 0 && bytes + n > limit) {
      runs.push(run);
      run = [];
      bytes = 0;
    }
    run.push(item);
    bytes += n;
  }
  runs.push(run);
  return runs;
}

/** About the JSON length of a presence change: `{"event":"join","name":"..."},`. */
function changeLength(change: PresenceChange): number {
  switch (change.event) {
    case "join":
      return change.name.length + 28;
    case "leave":
      return change.name.length + change.reason.length + 40;
    case "rename":
      return change.from.length + change.name.length + 40;
  }
}

/** About the JSON length of a name in a list: `"name",`. */
function nameLength(name: string): number {
  return name.length + 3;
}

/** Counts changes by kind. */
function countChanges(changes: PresenceChange[]): PresenceMore {
  const more = { joined: 0, left: 0, renamed: 0 };
  for (const change of changes) {
    if (change.event === "join") more.joined++;
    else if (change.event === "leave") more.left++;
    else more.renamed++;
  }
  return more;
}

/** A token bucket: `rate` per second, at most `burst` at once. */
class RateLimit {
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
   * Takes queued events off the front as one write, at most about `limit`
   * bytes (Deno keeps a WebSocket's write buffer as large as the largest
   * frame it was sent, so a batch is cut like a list). JSON events are
   * separated by newlines (one frame, one event per line, as gorilla's
   * writePump packs its queue); text lines end with their own.
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
    let batch = queue[0];
    if (count > 1) {
      batch = new Uint8Array(size);
      let offset = 0;
      for (let i = 0; i < count; i++) {
        if (i > 0 && gap) batch[offset++] = NEWLINE;
        batch.set(queue[i], offset);
        offset += queue[i].byteLength;
      }
    }
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

/**
 * The room: the one owner of its members. Everything a transport does
 * goes through `join`, `leave`, `rename`, `broadcast` and `notify`.
 */
export class ChatHub {
  /** This hub's name on the bus. */
  readonly instanceId: string;
  readonly maxMessageBytes: number;
  #members = new NameMap<Member>();
  /** Names of members on other instances, with the instance that holds each. */
  #remote = new NameMap<string>();
  #nextId = 1;
  #pending: PresenceChange[] = [];
  #presenceTimer: ReturnType<typeof setTimeout> | undefined;
  /** Members whose queue waits for their connection to drain; one timer polls them all. */
  #backlog = new Set<Member>();
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  #memberHooks = {
    onFailure: (member: Member) => this.leave(member, "disconnected"),
    onBacklog: (member: Member) => {
      this.#backlog.add(member);
      this.#drainTimer ??= setTimeout(this.#drainBacklog, DRAIN_POLL_MS);
    },
  };
  #maxQueue: number;
  #maxQueueBytes: number;
  #rate: number;
  #burst: number;
  #presenceDelayMs: number;
  #bus: HubBus | undefined;
  #log: (line: string) => void;
  #now: () => number;
  #closed = false;

  constructor(options: HubOptions = {}) {
    this.instanceId = options.instanceId ?? crypto.randomUUID();
    this.maxMessageBytes = options.maxMessageBytes ?? 512;
    this.#maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    this.#maxQueueBytes = options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
    this.#rate = options.rate ?? DEFAULT_RATE;
    this.#burst = Math.max(1, options.burst ?? DEFAULT_BURST);
    this.#presenceDelayMs = options.presenceDelayMs ?? DEFAULT_PRESENCE_DELAY_MS;
    this.#bus = options.bus;
    this.#log = options.onLog ?? (() => {});
    this.#now = options.now ?? Date.now;
  }

  /** Members on this instance. */
  get size(): number {
    return this.#members.size;
  }

  /** Every name in the room, this instance's and the others', sorted. */
  names(): string[] {
    return [...this.#members.keys(), ...this.#remote.keys()].sort();
  }

  /** Connects a bus after construction (or replaces it). */
  attachBus(bus: HubBus | undefined): void {
    this.#bus = bus;
  }

  /**
   * Adds a member under the requested name, or the name with a suffix
   * (`alice-2`) when it is taken; throws a `NameError` for an invalid
   * name. The member is greeted with its name and who is online; the room
   * hears that it joined.
   */
  join(requested: string, sink: MemberSink, options: JoinOptions = {}): Member {
    if (this.#closed) throw new Error("The room is closed");
    const wanted = checkName(requested);
    const name = this.#freeName(wanted);
    const now = this.#now();
    const member = new Member(
      this.#nextId++,
      name,
      sink,
      options.echo ?? true,
      new RateLimit(this.#rate, this.#burst, now),
      this.#memberHooks,
    );
    this.#members.set(name, member);
    this.#log(`${name} joined (${this.#members.size + this.#remote.size} in the room)`);
    const names = this.names();
    // TCP gets one line (at most 100 names listed); WebSocket the first names, `/who` the rest.
    const [first] = member.format === "line"
      ? [names]
      : splitList(names, nameLength, MAX_UNASKED_LIST_BYTES);
    const welcome = new Frame({
      type: "welcome",
      time: chatTime(new Date(now)),
      ts: now,
      name,
      requested: wanted,
      members: first,
      count: names.length,
    });
    member.greet(welcome.bytes(member.format));
    this.#announce({ event: "join", name });
    this.#bus?.publish({ type: "join", origin: this.instanceId, ts: now, name });
    return member;
  }

  /** Removes a member (again is harmless) and announces why it left; false if it was gone. */
  leave(member: Member, reason: LeaveReason = "quit"): boolean {
    if (!member.present || this.#members.get(member.name) !== member) return false;
    this.#members.delete(member.name);
    const discard = reason === "too slow" || reason === "disconnected";
    member.remove(discard);
    if (discard) this.#forgetBacklog(member);
    this.#log(`${member.name} left (${reason})`);
    if (this.#closed) return true;
    this.#announce({ event: "leave", name: member.name, reason });
    this.#bus?.publish({
      type: "leave",
      origin: this.instanceId,
      ts: this.#now(),
      name: member.name,
      reason,
    });
    return true;
  }

  /**
   * Changes a member's name (a taken name gets a suffix) and announces
   * it; returns the new name. Throws a `NameError` for an invalid name.
   */
  rename(member: Member, requested: string): string {
    const wanted = checkName(requested);
    const from = member.name;
    if (!member.present || wanted === from) return from;
    this.#members.delete(from);
    const name = this.#freeName(wanted);
    member.setName(name);
    this.#members.set(name, member);
    this.#announce({ event: "rename", from, name });
    this.#bus?.publish({ type: "rename", origin: this.instanceId, ts: this.#now(), from, name });
    return name;
  }

  /**
   * Sends a member's message to the room, stamped with the time and its
   * name. A message that is empty or too long, or over the member's rate,
   * is refused with a notice to that member only; returns whether it went.
   */
  broadcast(member: Member, text: string): boolean {
    if (!member.present) return false;
    let clean: string;
    try {
      clean = cleanMessage(text, this.maxMessageBytes);
    } catch (error) {
      if (!(error instanceof MessageError)) throw error;
      this.notify(member, error.message, "error");
      return false;
    }
    const now = this.#now();
    if (!this.#withinRate(member, now)) return false;
    this.#publishMessage(member.name, clean, now, member.echo ? undefined : member);
    this.#bus?.publish({
      type: "message",
      origin: this.instanceId,
      ts: now,
      name: member.name,
      text: clean,
    });
    return true;
  }

  /**
   * Sends a member everyone in the room (its `/who`): `members` events of
   * about {@link MAX_LIST_FRAME_BYTES} each for WebSocket, the last marked
   * `end`, and no more than a quarter of the member's queue bound in all
   * (64 KiB, some 3000 names: a larger room is listed in part); one line of
   * up to 100 names for TCP. It counts against the member's rate like a
   * message; returns false when refused.
   */
  who(member: Member): boolean {
    if (!member.present) return false;
    const now = this.#now();
    if (!this.#withinRate(member, now)) return false;
    const time = chatTime(new Date(now));
    const names = this.names();
    const pieces = member.format === "line"
      ? [names]
      : splitList(names, nameLength, MAX_LIST_FRAME_BYTES);
    // The pieces queue up behind each other: a quarter of the member's
    // queue bound at most, so that asking never gets it dropped.
    const budget = this.#maxQueueBytes / 4;
    let bytes = 0;
    let offset = 0;
    for (let i = 0; i < pieces.length; i++) {
      const members = pieces[i];
      bytes += members.reduce((sum, name) => sum + nameLength(name), 0);
      const end = i === pieces.length - 1 || bytes > budget;
      const event: ChatEvent = {
        type: "members",
        time,
        ts: now,
        members,
        offset,
        count: names.length,
      };
      if (end) event.end = true;
      this.#sendTo(member, event);
      if (end) break;
      offset += members.length;
    }
    return true;
  }

  /** Sends one member a notice that only it sees. */
  notify(member: Member, text: string, level: "info" | "error" = "info"): void {
    const now = this.#now();
    this.#sendTo(member, { type: "notice", time: chatTime(new Date(now)), ts: now, level, text });
  }

  /**
   * Queues a reply the transport formatted itself (TCP's `/pong`), in
   * order with everything else the member receives.
   */
  sendRaw(member: Member, bytes: Uint8Array): void {
    if (!member.send(bytes, this.#maxQueue, this.#maxQueueBytes)) this.#drop([member]);
  }

  /**
   * Takes an event that happened on another instance: remote joins,
   * leaves and renames update the member list and are announced, remote
   * messages are delivered. Events of this instance's own origin are
   * ignored, so a bus may echo them.
   */
  receive(event: BusEvent): void {
    if (event.origin === this.instanceId || this.#closed) return;
    switch (event.type) {
      case "join":
        this.#remote.set(event.name, event.origin);
        this.#announce({ event: "join", name: event.name });
        return;
      case "leave":
        if (this.#remote.get(event.name) !== event.origin) return;
        this.#remote.delete(event.name);
        this.#announce({ event: "leave", name: event.name, reason: event.reason });
        return;
      case "rename":
        if (this.#remote.get(event.from) === event.origin) this.#remote.delete(event.from);
        this.#remote.set(event.name, event.origin);
        this.#announce({ event: "rename", from: event.from, name: event.name });
        return;
      case "message":
        this.#publishMessage(event.name, event.text, event.ts);
        return;
      case "roster":
        for (const [name, origin] of this.#remote) {
          if (origin === event.origin && !event.names.includes(name)) this.#remote.delete(name);
        }
        for (const name of event.names) this.#remote.set(name, event.origin);
        return;
    }
  }

  /** This instance's members, for a hub that joins the bus later. */
  roster(): BusEvent {
    return {
      type: "roster",
      origin: this.instanceId,
      ts: this.#now(),
      names: [...this.#members.keys()],
    };
  }

  /** Removes every member of an instance that is gone, announcing each. */
  forget(origin: string): void {
    for (const [name, from] of this.#remote) {
      if (from !== origin) continue;
      this.#remote.delete(name);
      this.#announce({ event: "leave", name, reason: "instance lost" });
    }
  }

  /** The member of this instance with this name, if any (the bus settles name clashes). */
  localMember(name: string): Member | undefined {
    return this.#members.get(name);
  }

  /** Sends every member of this instance a notice (the bus says the room is split or whole). */
  notifyAll(text: string, level: "info" | "error" = "info"): void {
    for (const member of [...this.#members.values()]) this.notify(member, text, level);
  }

  /**
   * Closes the room: every member hears `text` and is removed (the
   * transports close their connections); joins are refused from now on.
   * Resolves once the notice has been handed to every connection that
   * still reads; wait for it with a timeout before closing them.
   */
  close(text = "The server is shutting down"): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#flushPresence();
    const members = [...this.#members.values()];
    for (const member of members) this.notify(member, text);
    this.#closed = true;
    clearTimeout(this.#presenceTimer);
    for (const member of members) this.leave(member, "server shutdown");
    return Promise.all(members.map((m) => m.flushed())).then(() => {});
  }

  /** The drain timer: writes the queues of members whose connection has taken the last write. */
  #drainBacklog = (): void => {
    this.#drainTimer = undefined;
    for (const member of this.#backlog) {
      if (!member.drain()) this.#backlog.delete(member);
    }
    if (this.#backlog.size > 0) this.#drainTimer ??= setTimeout(this.#drainBacklog, DRAIN_POLL_MS);
  };

  #forgetBacklog(member: Member): void {
    if (!this.#backlog.delete(member) || this.#backlog.size > 0) return;
    clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
  }

  /** Takes one from the member's rate; the first refusal of a streak tells it why. */
  #withinRate(member: Member, now: number): boolean {
    if (member.limit.take(now)) {
      member.refusing = false;
      return true;
    }
    if (!member.refusing) {
      member.refusing = true;
      this.#log(`${member.name}: over the rate limit, refusing messages`);
      this.notify(
        member,
        `Slow down: at most ${this.#rate} messages per second (${this.#burst} at once); ` +
          "messages are refused until you do",
        "error",
      );
    }
    return false;
  }

  /**
   * The requested name if free, else the first free `name-2`, `name-3`,
   * ...; a name that looks like a present one (same TR39 skeleton) is taken.
   */
  #freeName(wanted: string): string {
    const taken = (n: string) => this.#members.hasLookAlike(n) || this.#remote.hasLookAlike(n);
    if (!taken(wanted)) return wanted;
    for (let i = 2;; i++) {
      const candidate = `${wanted}-${i}`;
      if (!taken(candidate)) return candidate;
    }
  }

  #publishMessage(name: string, text: string, ts: number, except?: Member): void {
    // Joins announced before this message must arrive before it.
    this.#flushPresence();
    const frame = new Frame({ type: "message", time: chatTime(new Date(ts)), ts, name, text });
    this.#deliver(frame, except);
  }

  #announce(change: PresenceChange): void {
    this.#pending.push(change);
    if (this.#presenceDelayMs <= 0) {
      this.#flushPresence();
    } else if (this.#presenceTimer === undefined) {
      this.#presenceTimer = setTimeout(() => this.#flushPresence(), this.#presenceDelayMs);
    }
  }

  #flushPresence(): void {
    clearTimeout(this.#presenceTimer);
    this.#presenceTimer = undefined;
    if (this.#pending.length === 0) return;
    const pending = this.#pending;
    this.#pending = [];
    const now = this.#now();
    const time = chatTime(new Date(now));
    const count = this.#members.size + this.#remote.size;
    // One frame, small for everyone: what does not fit is counted (`/who` lists it).
    const [changes, ...rest] = splitList(pending, changeLength, MAX_UNASKED_LIST_BYTES);
    const event: ChatEvent = { type: "presence", time, ts: now, changes, count };
    if (rest.length > 0) event.more = countChanges(rest.flat());
    this.#deliver(new Frame(event));
  }

  #sendTo(member: Member, event: ChatEvent): void {
    const frame = new Frame(event);
    if (!member.send(frame.bytes(member.format), this.#maxQueue, this.#maxQueueBytes)) {
      this.#drop([member]);
    }
  }

  #deliver(frame: Frame, except?: Member): void {
    let slow: Member[] | null = null;
    const maxQueue = this.#maxQueue;
    const maxBytes = this.#maxQueueBytes;
    for (const member of this.#members.values()) {
      if (member === except) continue;
      if (!member.send(frame.bytes(member.format), maxQueue, maxBytes)) (slow ??= []).push(member);
    }
    if (slow) this.#drop(slow);
  }

  /** Drops members that fell too far behind: the room hears why, the connection closes. */
  #drop(members: Member[]): void {
    for (const member of members) {
      if (!this.leave(member, "too slow")) continue;
      this.#log(`${member.name}: dropped, more than ${this.#maxQueue} messages behind`);
      member.closeSink("too slow");
    }
  }
}
