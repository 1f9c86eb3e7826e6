/**
 * A room's passes: how the hub writes its events to every member. A quiet
 * room writes each event at once; a busy one holds what arrives between
 * passes and writes it in one write per member, within a budget of member
 * writes per second.
 *
 * @module
 */
import { Frame, joinEvents, type WireFormat } from "./chat_wire.ts";
import type { Member } from "./member.ts";

/**
 * Member writes per second a room spends at most on its events while they
 * keep coming. Writing every member is the room's cost (about 6 us of CPU
 * a write, most of it the kernel's); a room of 500 members sent a message
 * every 2 ms would otherwise take the whole thread and queue behind
 * itself. Past this budget, events that arrive meanwhile are held and the
 * next pass writes them in one write per member: a room of 500 passes at
 * most every 10 ms. A room under 50 members, or a quiet one, is never
 * held. At 100,000 (5 ms) the fan-out p99 of `deno task bench chat`
 * spread from 16 to 74 ms, as the server and its 500 readers fought for
 * two cores; at 50,000 it stayed between 18 and 25 ms.
 */
export const PASS_WRITES_PER_SECOND = 50_000;
/**
 * Held events of about this many bytes go out at once, whatever the
 * budget: a pass is one frame per member, and a frame must stay well
 * under a member's queue bound (256 KiB) and a socket's (512 KiB).
 */
export const MAX_PASS_BYTES = 32 * 1024;

/** An event waiting for the next pass, with the member that must not get it (its own, unechoed). */
interface Held {
  frame: Frame;
  except: Member | undefined;
}

/** What the passes need of the hub. */
export interface PassTarget {
  /** The room's members on this instance, in join order. */
  readonly members: { values(): Iterable<Member>; readonly size: number };
  /** Queues bytes for a member; false when that passes its bounds (then it is dropped). */
  send(member: Member, bytes: Uint8Array): boolean;
  /** Drops members that fell behind, after the pass. */
  drop(members: Member[]): void;
}

/** The room's passes: one held list, one timer, one budget. */
export class RoomPasses {
  #target: PassTarget;
  #writesPerSecond: number;
  #held: Held[] = [];
  /** Their size (as JSON). */
  #heldBytes = 0;
  /** Events passed so far: a member that joined after some were held skips those. */
  #passed = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the next pass may start (`performance.now()`: the room's clock may be a test's). */
  #next = 0;
  /** A pass is writing its members (what is delivered meanwhile waits for the next). */
  #passing = false;

  /** `writesPerSecond` 0 never holds. */
  constructor(target: PassTarget, writesPerSecond: number) {
    this.#target = target;
    this.#writesPerSecond = writesPerSecond;
  }

  /** Where a member joining now starts: it gets none of the events held before it. */
  get joinPoint(): number {
    return this.#passed + this.#held.length;
  }

  /** Sends an event to the room: now, or with the next pass when the room is over its budget. */
  deliver(frame: Frame, except?: Member): void {
    this.hold(frame, except);
    // During a pass (a write that fails at once makes a leave) the event waits for the next.
    if (this.#passing) return;
    if (this.#heldBytes >= MAX_PASS_BYTES) this.pass();
    else if (this.#timer === undefined) this.#schedule();
  }

  /** Holds an event for the pass the next {@link deliver} makes (joins before a message). */
  hold(frame: Frame, except?: Member): void {
    this.#held.push({ frame, except });
    this.#heldBytes += frame.bytes("json").byteLength;
  }

  /**
   * Writes every member what is held, now, in one write each: the same
   * bytes for all (encoded once per format), but for a member that must
   * skip one of the events. Then sets when the next pass may start.
   */
  pass = (): void => {
    if (this.#passing) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const held = this.#held;
    if (held.length === 0) return;
    const started = performance.now();
    this.#held = [];
    this.#heldBytes = 0;
    const first = this.#passed;
    this.#passed += held.length;
    let skipping: Set<Member> | null = null;
    for (const h of held) if (h.except) (skipping ??= new Set()).add(h.except);
    const shared = new Map<WireFormat, Uint8Array>();
    const members = this.#target.members;
    let slow: Member[] | null = null;
    this.#passing = true;
    try {
      for (const member of members.values()) {
        let bytes: Uint8Array | undefined;
        if (member.since <= first && !skipping?.has(member)) {
          bytes = shared.get(member.format);
          if (bytes === undefined) {
            bytes = joinEvents(held.map((h) => h.frame.bytes(member.format)), member.format);
            shared.set(member.format, bytes);
          }
        } else {
          bytes = heldFor(member, held, first);
          if (bytes === undefined) continue;
        }
        if (!this.#target.send(member, bytes)) (slow ??= []).push(member);
      }
    } finally {
      this.#passing = false;
    }
    const rate = this.#writesPerSecond;
    const gap = rate > 0 ? members.size * 1000 / rate : 0;
    // Under a millisecond (the clock's grain) the room is never held.
    this.#next = gap >= 1 ? started + gap : 0;
    if (slow) this.#target.drop(slow);
    if (this.#held.length > 0 && this.#timer === undefined) this.#schedule();
  };

  /** Writes a leaving member what is held for it (the next pass will not find it). */
  passTo(member: Member): void {
    const bytes = heldFor(member, this.#held, this.#passed);
    if (bytes && !this.#target.send(member, bytes)) this.#target.drop([member]);
  }

  /** Stops the timer (the room is closing; pass what is held first). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    const wait = this.#next - performance.now();
    if (wait <= 0) this.pass();
    else this.#timer = setTimeout(this.pass, wait);
  }
}

/** The held events one member gets: those since it joined, but its own unechoed ones. */
function heldFor(member: Member, held: readonly Held[], first: number): Uint8Array | undefined {
  const parts: Uint8Array[] = [];
  for (let i = Math.max(0, member.since - first); i < held.length; i++) {
    if (held[i].except !== member) parts.push(held[i].frame.bytes(member.format));
  }
  return parts.length > 0 ? joinEvents(parts, member.format) : undefined;
}
