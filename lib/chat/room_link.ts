/**
 * One chat room across several hubs: a {@link RoomLink} is the
 * {@link HubBus} of one hub, whatever carries its messages (a RabbitMQ
 * exchange between machines, a `BroadcastChannel` between worker threads).
 * The transport only moves {@link LinkMessage}s and says when it is up or
 * down; the link does the rest:
 *
 * - every message carries its origin and a sequence number, so a message
 *   that arrives twice (a publisher re-sending after a reconnect) is
 *   dropped, and each sender's order is kept;
 * - a hub that joins (or rejoins) says `hello` with its members, and the
 *   others answer with theirs, so member lists cover the whole room;
 * - each hub beats every `heartbeatMs`; one silent for `lostAfterMs`
 *   (killed, or cut off) is forgotten and its members announced as gone;
 * - when the transport goes down, every remote member is forgotten and the
 *   local members are told once that the room is local-only; when it is
 *   back, the rosters are exchanged again and the room heals.
 *
 * @module
 */
import { checkName } from "./chat_text.ts";
import type { BusEvent, ChatHub, HubBus, LeaveReason } from "./hub.ts";

/** How often a hub says it is alive. */
export const DEFAULT_HEARTBEAT_MS = 2_000;
/** Beats a hub may miss before the others give it up: a busy machine delays timers. */
export const LOST_AFTER_BEATS = 4;
/** Longest message text accepted from the bus, in bytes: far above any hub's own limit. */
const MAX_TEXT_BYTES = 64 * 1024;
/** Most names in one roster: a hub never holds more members than this. */
const MAX_ROSTER = 1_000_000;

/** What travels between the hubs of one room. */
export type LinkMessage =
  | { kind: "event"; origin: string; seq: number; event: BusEvent }
  | { kind: "hello"; origin: string; seq: number; names: string[] }
  | { kind: "roster"; origin: string; seq: number; names: string[] }
  | { kind: "beat"; origin: string; seq: number }
  | { kind: "bye"; origin: string; seq: number };

/** A link message without the fields the link fills in. */
type Outgoing =
  | { kind: "event"; event: BusEvent }
  | { kind: "hello" | "roster"; names: string[] }
  | { kind: "beat" | "bye" };

/** Options for {@link RoomLink}. */
export interface RoomLinkOptions {
  /** How often this hub says it is alive. Default 2 s. */
  heartbeatMs?: number;
  /** Forget a hub silent this long. Default 4 heartbeats. */
  lostAfterMs?: number;
  /** Called for the server's log. Default none. */
  onLog?: (line: string) => void;
  /** What the notices call the transport. Default "the bus". */
  transportName?: string;
  /** The clock. Default `Date.now`. */
  now?: () => number;
}

/** What the link knows of another hub. */
interface Peer {
  lastHeard: number;
  names: Set<string>;
  /** Whether its full member list has arrived (a hello or a roster). */
  listed: boolean;
}

/** Counters for tests and logs. */
export interface LinkStats {
  /** Messages dropped because their sequence number was already seen. */
  duplicates: number;
  /** Messages that never arrived, from gaps in sequence numbers. */
  missed: number;
}

/**
 * The bus of one hub: sends what happens locally, applies what the other
 * hubs send, and tracks which hubs are alive.
 */
export class RoomLink implements HubBus {
  /** This hub's name on the bus (the hub's `instanceId`). */
  readonly origin: string;
  readonly stats: LinkStats = { duplicates: 0, missed: 0 };
  #hub: ChatHub;
  #send: (message: LinkMessage) => void;
  #seq = 0;
  #up = false;
  #split = false;
  #peers = new Map<string, Peer>();
  /** Last sequence number seen per origin, kept after a hub is forgotten. */
  #lastSeq = new Map<string, number>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastHello = -Infinity;
  #heartbeatMs: number;
  #lostAfterMs: number;
  #log: (line: string) => void;
  #transport: string;
  #now: () => number;

  constructor(hub: ChatHub, send: (message: LinkMessage) => void, options: RoomLinkOptions = {}) {
    this.origin = hub.instanceId;
    this.#hub = hub;
    this.#send = send;
    this.#heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.#lostAfterMs = options.lostAfterMs ?? LOST_AFTER_BEATS * this.#heartbeatMs;
    this.#log = options.onLog ?? (() => {});
    this.#transport = options.transportName ?? "the bus";
    this.#now = options.now ?? Date.now;
  }

  /** Whether the transport is up (the room spans the instances). */
  get up(): boolean {
    return this.#up;
  }

  /** The other hubs heard from, with how many members each holds. */
  peers(): Map<string, number> {
    return new Map([...this.#peers].map(([origin, peer]) => [origin, peer.names.size]));
  }

  /** Called by the hub for each local join, leave, rename and message. */
  publish(event: BusEvent): void {
    if (this.#up) this.#emit({ kind: "event", event });
  }

  /** The transport is up: announce this hub's members and start beating. */
  connected(): void {
    if (this.#up) return;
    this.#up = true;
    this.#hello(true);
    this.#timer = setInterval(() => this.#tick(), this.#heartbeatMs);
    if (this.#split) {
      this.#split = false;
      this.#log(`Bus: back on ${this.#transport}, the room is whole again`);
      this.#hub.notifyAll(`Reconnected to ${this.#transport}: the room is whole again`);
    }
  }

  /**
   * The transport is down: members elsewhere are out of reach, so they
   * leave the member list, and local members hear once that the room is
   * local-only until the transport is back.
   */
  disconnected(reason: string): void {
    if (!this.#up) return;
    this.#up = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const origin of [...this.#peers.keys()]) this.#forget(origin);
    if (this.#split) return;
    this.#split = true;
    this.#log(`Bus: lost ${this.#transport} (${reason}); the room is local-only`);
    this.#hub.notifyAll(
      `Lost ${this.#transport}: the room is local-only until it is back; ` +
        "members on other servers cannot hear you",
      "error",
    );
  }

  /** Takes a message from the transport; the transport has checked its shape. */
  receive(message: LinkMessage): void {
    if (message.origin === this.origin || !this.#up) return;
    const last = this.#lastSeq.get(message.origin) ?? 0;
    if (message.seq <= last) {
      this.stats.duplicates++;
      return;
    }
    if (last > 0 && message.seq > last + 1) this.stats.missed += message.seq - last - 1;
    this.#lastSeq.set(message.origin, message.seq);
    let peer = this.#peers.get(message.origin);
    if (!peer) {
      peer = { lastHeard: 0, names: new Set(), listed: false };
      this.#peers.set(message.origin, peer);
    }
    peer.lastHeard = this.#now();
    switch (message.kind) {
      case "event":
        this.#apply(peer, message.event);
        break;
      case "hello":
        peer.listed = true;
        this.#roster(message.origin, peer, message.names);
        this.#emit({ kind: "roster", names: this.#localNames() });
        this.#log(
          `Bus: ${short(message.origin)} is in the room with ${message.names.length} members`,
        );
        return;
      case "roster":
        peer.listed = true;
        this.#roster(message.origin, peer, message.names);
        return;
      case "bye":
        for (const name of peer.names) this.#leave(message.origin, name, "server shutdown");
        this.#peers.delete(message.origin);
        this.#log(`Bus: ${short(message.origin)} left the room`);
        return;
      case "beat":
        break;
    }
    // A hub whose hello we missed (our queue was not bound yet): ask for rosters until one comes.
    if (!peer.listed) this.#hello();
  }

  /** Says goodbye (the others forget this hub's members at once) and stops beating. */
  close(): void {
    if (this.#up) this.#emit({ kind: "bye" });
    this.#up = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #emit(message: Outgoing): void {
    this.#send({ ...message, origin: this.origin, seq: ++this.#seq } as LinkMessage);
  }

  #localNames(): string[] {
    const roster = this.#hub.roster();
    return roster.type === "roster" ? roster.names : [];
  }

  /** Announces this hub's members and asks the others for theirs. */
  #hello(always = false): void {
    if (!always) {
      // Asking because a hello was missed: at once, then at most once a heartbeat.
      const now = this.#now();
      if (now - this.#lastHello < this.#heartbeatMs) return;
      this.#lastHello = now;
    }
    this.#emit({ kind: "hello", names: this.#localNames() });
  }

  #tick(): void {
    this.#emit({ kind: "beat" });
    const now = this.#now();
    for (const [origin, peer] of this.#peers) {
      if (now - peer.lastHeard <= this.#lostAfterMs) continue;
      this.#log(
        `Bus: ${short(origin)} silent for ${now - peer.lastHeard} ms, ` +
          `its ${peer.names.size} members are gone`,
      );
      this.#forget(origin);
    }
  }

  #forget(origin: string): void {
    this.#peers.delete(origin);
    this.#hub.forget(origin);
  }

  #apply(peer: Peer, event: BusEvent): void {
    switch (event.type) {
      case "join":
        peer.names.add(event.name);
        break;
      case "leave":
        peer.names.delete(event.name);
        break;
      case "rename":
        peer.names.delete(event.from);
        peer.names.add(event.name);
        break;
      case "roster":
        this.#roster(event.origin, peer, event.names);
        return;
    }
    this.#hub.receive(event);
    if (event.type === "join" || event.type === "rename") {
      this.#settleClash(event.origin, event.name);
    }
    if (event.type === "leave" || event.type === "rename") {
      this.#keepListed(event.type === "leave" ? event.name : event.from);
    }
  }

  /**
   * The hub lists each remote name once; when one server's member lets go
   * of a name another server's member also holds (a clash being settled),
   * the hub's list is given that server's names again, silently.
   */
  #keepListed(name: string): void {
    for (const [origin, peer] of this.#peers) {
      if (!peer.names.has(name)) continue;
      const ts = this.#now();
      this.#hub.receive({ type: "roster", origin, ts, names: [...peer.names] });
    }
  }

  /**
   * Two servers gave one name to two members (both joined at once, or
   * while the room was split): the server with the smaller id keeps it,
   * the other renames its member with a suffix and tells it why.
   */
  #settleClash(origin: string, name: string): void {
    if (this.origin < origin) return;
    const member = this.#hub.localMember(name);
    if (!member) return;
    const taken = new Set(this.#hub.names());
    let i = 2;
    while (taken.has(`${name}-${i}`)) i++;
    const renamed = this.#hub.rename(member, `${name}-${i}`);
    this.#hub.notify(member, `"${name}" is taken on another server: you are now ${renamed}`);
    this.#log(`Bus: ${name} is taken on ${short(origin)}, renamed ours to ${renamed}`);
  }

  /** Brings a hub's member list up to date, announcing the differences. */
  #roster(origin: string, peer: Peer, names: string[]): void {
    const now = this.#now();
    const fresh = new Set(names);
    for (const name of peer.names) {
      if (!fresh.has(name)) this.#leave(origin, name, "disconnected");
    }
    const joined = [...fresh].filter((name) => !peer.names.has(name));
    peer.names = fresh;
    for (const name of joined) {
      this.#hub.receive({ type: "join", origin, ts: now, name });
      this.#settleClash(origin, name);
    }
  }

  #leave(origin: string, name: string, reason: LeaveReason): void {
    this.#hub.receive({ type: "leave", origin, ts: this.#now(), name, reason });
  }
}

/** An instance id short enough for a log line (the first 8 of a UUID's characters). */
function short(origin: string): string {
  return origin.length > 12 ? origin.slice(0, 8) : origin;
}

const LEAVE_REASONS: ReadonlySet<string> = new Set<LeaveReason>([
  "quit",
  "disconnected",
  "timed out",
  "too slow",
  "server shutdown",
  "instance lost",
]);

/**
 * Checks that a value from the bus is a well-formed {@link LinkMessage};
 * throws a `SyntaxError` saying what is wrong. Anyone who can publish to
 * the exchange can send anything, so nothing is trusted.
 */
export function checkLinkMessage(value: unknown): LinkMessage {
  const m = record(value, "message");
  const origin = text(m.origin, "origin", 200);
  if (!Number.isSafeInteger(m.seq) || (m.seq as number) < 1) bad("seq", m.seq);
  switch (m.kind) {
    case "beat":
    case "bye":
      return { kind: m.kind, origin, seq: m.seq as number };
    case "hello":
    case "roster":
      return { kind: m.kind, origin, seq: m.seq as number, names: nameList(m.names) };
    case "event": {
      const event = checkBusEvent(m.event);
      if (event.origin !== origin) bad("event.origin", event.origin);
      return { kind: "event", origin, seq: m.seq as number, event };
    }
    default:
      return bad("kind", m.kind);
  }
}

function checkBusEvent(value: unknown): BusEvent {
  const e = record(value, "event");
  const origin = text(e.origin, "event.origin", 200);
  const ts = e.ts;
  if (typeof ts !== "number" || !Number.isFinite(ts)) bad("event.ts", ts);
  const base = { origin, ts: ts as number };
  switch (e.type) {
    case "join":
      return { type: "join", ...base, name: name(e.name) };
    case "leave": {
      const reason = e.reason;
      if (typeof reason !== "string" || !LEAVE_REASONS.has(reason)) bad("event.reason", reason);
      return { type: "leave", ...base, name: name(e.name), reason: reason as LeaveReason };
    }
    case "rename":
      return { type: "rename", ...base, from: name(e.from), name: name(e.name) };
    case "message":
      return { type: "message", ...base, name: name(e.name), text: text(e.text, "text") };
    case "roster":
      return { type: "roster", ...base, names: nameList(e.names) };
    default:
      return bad("event.type", e.type);
  }
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) bad(what, value);
  return value as Record<string, unknown>;
}

function text(value: unknown, what: string, maxBytes = MAX_TEXT_BYTES): string {
  if (typeof value !== "string" || value.length > maxBytes) bad(what, value);
  return value as string;
}

function name(value: unknown): string {
  if (typeof value !== "string") bad("name", value);
  // A taken name gets a suffix (`alice-2`), which may take it past the length limit.
  const base = (value as string).replace(/-\d{1,9}$/, "");
  try {
    if (checkName(base) === base) return value as string;
  } catch {
    // Reported below.
  }
  return bad("name", value);
}

function nameList(value: unknown): string[] {
  if (!Array.isArray(value) || value.length > MAX_ROSTER) bad("names", value);
  return (value as unknown[]).map(name);
}

function bad(what: string, value: unknown): never {
  const shown = JSON.stringify(value) ?? String(value);
  throw new SyntaxError(
    `Invalid ${what} ${shown.length > 60 ? shown.slice(0, 60) + "..." : shown} on the bus`,
  );
}
