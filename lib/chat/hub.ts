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
 * A member and its queue are in member.ts, the events and their encodings
 * in chat_wire.ts, how an event reaches every member (held passes in a
 * busy room) in passes.ts; this file re-exports what transports use of them.
 *
 * @module
 */
import { NameMap } from "../text/names.ts";
import { chatTime, checkName, cleanMessage, MessageError } from "./chat_text.ts";
import {
  type BusEvent,
  changeLength,
  type ChatEvent,
  countChanges,
  Frame,
  type LeaveReason,
  MAX_LIST_FRAME_BYTES,
  MAX_UNASKED_LIST_BYTES,
  nameLength,
  type PresenceChange,
  splitList,
} from "./chat_wire.ts";
import { PASS_WRITES_PER_SECOND, RoomPasses } from "./passes.ts";
import {
  DEFAULT_MAX_QUEUE,
  DEFAULT_MAX_QUEUE_BYTES,
  DRAIN_POLL_MS,
  Member,
  type MemberSink,
  RateLimit,
} from "./member.ts";

// The room is what transports import: its parts come with it.
export {
  type BusEvent,
  type ChatEvent,
  describeChange,
  describeMore,
  formatLines,
  type LeaveReason,
  MAX_LIST_FRAME_BYTES,
  MAX_UNASKED_LIST_BYTES,
  onlineText,
  type PresenceChange,
  type PresenceMore,
  type WireFormat,
} from "./chat_wire.ts";
export { MAX_PASS_BYTES, PASS_WRITES_PER_SECOND } from "./passes.ts";
export {
  DEFAULT_MAX_QUEUE,
  DEFAULT_MAX_QUEUE_BYTES,
  DRAIN_POLL_MS,
  Member,
  type MemberSink,
} from "./member.ts";

/** Messages a member may send per second, sustained. */
export const DEFAULT_RATE = 10;
/** Messages a member may send at once (a pasted paragraph) before the rate applies. */
export const DEFAULT_BURST = 20;
/** Joins and leaves within this window go out as one announcement, so a crowd joining costs O(n). */
export const DEFAULT_PRESENCE_DELAY_MS = 50;
/**
 * Announcement writes per second a room spends at most while joins keep
 * coming: a larger room gathers them longer (2000 members: 1 s), so that a
 * join storm does not write every member every window (each write is a
 * promise and a runtime call, and their garbage stays in the heap).
 */
export const PRESENCE_WRITES_PER_SECOND = 2000;
/** The longest a join or leave waits to be announced, however large the room. */
export const MAX_PRESENCE_DELAY_MS = 2_000;
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
  /**
   * Joins and leaves are gathered at least this long into one announcement
   * (longer in a large room, see {@link PRESENCE_WRITES_PER_SECOND}); 0
   * sends each at once. Default 50.
   */
  presenceDelayMs?: number;
  /** This hub's name on the bus. Default a random id. */
  instanceId?: string;
  /** Where local events go to reach other instances. Default none. */
  bus?: HubBus;
  /**
   * Member writes per second the room spends at most on its events
   * before it holds them for one write per member; 0 never holds.
   * Default {@link PASS_WRITES_PER_SECOND}.
   */
  passWritesPerSecond?: number;
  /** Called on each join, leave and drop, for the server's log. */
  onLog?: (line: string) => void;
  /** The clock. Default `Date.now`. */
  now?: () => number;
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
  #passes: RoomPasses;
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
    this.#passes = new RoomPasses({
      members: this.#members,
      send: (member, bytes) => member.send(bytes, this.#maxQueue, this.#maxQueueBytes),
      drop: (members) => this.#drop(members),
    }, options.passWritesPerSecond ?? PASS_WRITES_PER_SECOND);
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
    member.since = this.#passes.joinPoint;
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
    const discard = reason === "too slow" || reason === "disconnected";
    if (!discard) this.#passes.passTo(member);
    this.#members.delete(member.name);
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
    this.#passes.pass();
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
    this.#passes.pass();
    const members = [...this.#members.values()];
    for (const member of members) this.notify(member, text);
    this.#closed = true;
    clearTimeout(this.#presenceTimer);
    this.#passes.stop();
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
    // Joins announced before this message must arrive before it, in the same write.
    this.#flushPresence(false);
    const frame = new Frame({ type: "message", time: chatTime(new Date(ts)), ts, name, text });
    this.#passes.deliver(frame, except);
  }

  #announce(change: PresenceChange): void {
    this.#pending.push(change);
    if (this.#presenceDelayMs <= 0) {
      this.#flushPresence();
    } else if (this.#presenceTimer === undefined) {
      const delay = Math.max(
        this.#presenceDelayMs,
        Math.min(MAX_PRESENCE_DELAY_MS, this.#members.size * 1000 / PRESENCE_WRITES_PER_SECOND),
      );
      this.#presenceTimer = setTimeout(() => this.#flushPresence(), delay);
    }
  }

  /** Announces the gathered joins and leaves; `pass` false holds them for the event that follows. */
  #flushPresence(pass = true): void {
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
    if (pass) this.#passes.deliver(new Frame(event));
    else this.#passes.hold(new Frame(event));
  }

  #sendTo(member: Member, event: ChatEvent): void {
    // A member's own notice comes after the room's events before it.
    this.#passes.pass();
    const frame = new Frame(event);
    if (!member.send(frame.bytes(member.format), this.#maxQueue, this.#maxQueueBytes)) {
      this.#drop([member]);
    }
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
