/**
 * The chat room's wire format: the events members receive ({@link ChatEvent})
 * and hubs exchange ({@link BusEvent}), their encoding once per format (JSON
 * for WebSocket, seed 001's text lines for TCP), and the sizing of lists.
 *
 * @module
 */
import { escapeControls } from "./chat_text.ts";

const encoder = new TextEncoder();
const NEWLINE = 0x0a;

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

/** An event encoded at most once per wire format, the same bytes for every member. */
export class Frame {
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

/**
 * Several encoded events as one write: JSON events one per line (one
 * frame, as gorilla's writePump packs its queue), text lines as they are
 * (each ends with its own newline).
 */
export function joinEvents(parts: readonly Uint8Array[], format: WireFormat): Uint8Array {
  if (parts.length === 1) return parts[0];
  const gap = format === "json" ? 1 : 0;
  let size = gap * (parts.length - 1);
  for (const part of parts) size += part.byteLength;
  const joined = new Uint8Array(size);
  let offset = 0;
  for (let i = 0; i < parts.length; i++) {
    if (i > 0 && gap) joined[offset++] = NEWLINE;
    joined.set(parts[i], offset);
    offset += parts[i].byteLength;
  }
  return joined;
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
export function splitList<T>(items: T[], length: (item: T) => number, limit: number): T[][] {
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
export function changeLength(change: PresenceChange): number {
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
export function nameLength(name: string): number {
  return name.length + 3;
}

/** Counts changes by kind. */
export function countChanges(changes: PresenceChange[]): PresenceMore {
  const more = { joined: 0, left: 0, renamed: 0 };
  for (const change of changes) {
    if (change.event === "join") more.joined++;
    else if (change.event === "leave") more.left++;
    else more.renamed++;
  }
  return more;
}
