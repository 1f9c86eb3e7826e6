/**
 * A chat member's connection for tests: keeps the lines the hub sends it,
 * and waits for one.
 *
 * @module
 */
import type { LeaveReason, MemberSink } from "../lib/chat/hub.ts";
import { delay } from "./helpers.ts";

const decoder = new TextDecoder();

/** Records what a member receives, as text lines. */
export class LineSink implements MemberSink {
  readonly format = "line";
  text = "";
  closed: LeaveReason | null = null;

  write(data: Uint8Array): void {
    this.text += decoder.decode(data);
  }

  close(reason: LeaveReason): void {
    this.closed = reason;
  }

  /** Lines received, without their time stamps. */
  get lines(): string[] {
    return this.text.split("\n").filter((l) => l).map((l) =>
      l.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d /, "")
    );
  }

  /** Waits until a line equals `line`, failing with everything received after `timeoutMs`. */
  async waitFor(line: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.lines.includes(line)) {
      if (Date.now() > deadline) {
        throw new Error(`Timed out waiting for "${line}"; received:\n${this.text}`);
      }
      await delay(10);
    }
  }
}

/** Waits until `check()` is true, failing with `what` after `timeoutMs`. */
export async function waitUntil(check: () => boolean, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await delay(10);
  }
}
