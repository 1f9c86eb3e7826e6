/**
 * A raw WebSocket client for tests: the handshake and frames written by
 * hand over `Deno.connect`, so tests can send what a browser never would
 * (a foreign Origin, an oversize frame) and stop reading on purpose.
 *
 * @module
 */
import { writeAll } from "../lib/io/lines.ts";
import { withTimeout } from "./helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** WebSocket opcodes. */
export const OP = { text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** One frame as read from the server. */
export interface Frame {
  opcode: number;
  payload: Uint8Array;
}

/** The status of a handshake that was not accepted. */
export interface HandshakeReply {
  status: number;
  head: string;
}

/** How to build a frame by hand, rules broken included. */
export interface RawFrame {
  opcode: number;
  payload?: Uint8Array | string;
  /** FIN bit. Default true. */
  fin?: boolean;
  /** RSV bits as a number 0-7 (RSV1 = 4). Default 0. */
  rsv?: number;
  /** Mask the payload, as clients must. Default true. */
  masked?: boolean;
  /** Declare this length instead of the payload's (to send a header alone). */
  length?: number;
  /** Use the 8-byte length form whatever the length. */
  longLength?: boolean;
}

/** The bytes of one client frame as `spec` describes it. */
export function buildFrame(spec: RawFrame): Uint8Array {
  const raw = spec.payload ?? new Uint8Array(0);
  const data = typeof raw === "string" ? encoder.encode(raw) : raw;
  const len = spec.length ?? data.length;
  const masked = spec.masked ?? true;
  const header = spec.longLength || len >= 65536 ? 10 : len < 126 ? 2 : 4;
  const frame = new Uint8Array(header + (masked ? 4 : 0) + data.length);
  frame[0] = ((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | spec.opcode;
  const view = new DataView(frame.buffer);
  if (header === 2) frame[1] = len;
  else if (header === 4) {
    frame[1] = 126;
    view.setUint16(2, len);
  } else {
    frame[1] = 127;
    view.setBigUint64(2, BigInt(len));
  }
  if (masked) frame[1] |= 0x80;
  const mask = [0x37, 0xfa, 0x21, 0x3d];
  const at = header + (masked ? 4 : 0);
  if (masked) frame.set(mask, header);
  for (let i = 0; i < data.length; i++) frame[at + i] = masked ? data[i] ^ mask[i & 3] : data[i];
  return frame;
}

/** A hand-driven WebSocket connection. */
export class RawWsClient implements AsyncDisposable {
  readonly conn: Deno.TcpConn;
  #buf = new Uint8Array(0);
  #closed = false;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /**
   * Connects and sends the handshake for `path` with extra headers; returns
   * the client and the status line's code (101 when upgraded).
   */
  static async open(
    port: number,
    path = "/ws",
    headers: Record<string, string> = {},
  ): Promise<{ client: RawWsClient; reply: HandshakeReply }> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const client = new RawWsClient(conn);
    const all: Record<string, string> = {
      Host: `127.0.0.1:${port}`,
      Upgrade: "websocket",
      Connection: "Upgrade",
      "Sec-WebSocket-Key": btoa("netkit-test-key!"),
      "Sec-WebSocket-Version": "13",
      ...headers,
    };
    const lines = Object.entries(all).filter(([, v]) => v !== "").map(([k, v]) => `${k}: ${v}`);
    await writeAll(conn, encoder.encode(`GET ${path} HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n`));
    const head = await client.#readHead();
    return { client, reply: { status: Number(head.split(" ")[1]), head } };
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(65536);
    const n = await this.conn.read(chunk);
    if (n === null) return false;
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  async #readHead(): Promise<string> {
    while (true) {
      const text = decoder.decode(this.#buf);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        this.#buf = this.#buf.subarray(encoder.encode(text.slice(0, end + 4)).length);
        return text.slice(0, end);
      }
      if (!(await withTimeout(this.#fill(), 5_000, "the handshake reply"))) {
        return decoder.decode(this.#buf);
      }
    }
  }

  /** Sends one masked frame (FIN set) with any opcode and payload. */
  async sendFrame(opcode: number, payload: Uint8Array | string): Promise<void> {
    const data = typeof payload === "string" ? encoder.encode(payload) : payload;
    const len = data.length;
    const header = len < 126 ? 2 : len < 65536 ? 4 : 10;
    const frame = new Uint8Array(header + 4 + len);
    frame[0] = 0x80 | opcode;
    if (len < 126) frame[1] = 0x80 | len;
    else if (len < 65536) {
      frame[1] = 0x80 | 126;
      new DataView(frame.buffer).setUint16(2, len);
    } else {
      frame[1] = 0x80 | 127;
      new DataView(frame.buffer).setBigUint64(2, BigInt(len));
    }
    const mask = [0x12, 0x34, 0x56, 0x78];
    frame.set(mask, header);
    for (let i = 0; i < len; i++) frame[header + 4 + i] = data[i] ^ mask[i & 3];
    await writeAll(this.conn, frame);
  }

  /** Sends bytes as they are (frames from {@link buildFrame}, split as the test likes). */
  async sendRaw(...frames: Uint8Array[]): Promise<void> {
    for (const bytes of frames) await writeAll(this.conn, bytes);
  }

  /** Whether the server closed the connection (EOF or reset) within `timeoutMs`; drops unread data. */
  async closedByServer(timeoutMs = 5_000): Promise<boolean> {
    const sink = new Uint8Array(65536);
    const read = async () => {
      try {
        while ((await this.conn.read(sink)) !== null) { /* discard */ }
      } catch {
        // A reset counts as closed.
      }
      return true;
    };
    return await withTimeout(read(), timeoutMs, "the server to close the connection").catch(
      () => false,
    );
  }

  /** Sends a close frame with a code. */
  sendClose(code = 1000): Promise<void> {
    const payload = new Uint8Array(2);
    new DataView(payload.buffer).setUint16(0, code);
    return this.sendFrame(OP.close, payload);
  }

  /** Reads one frame; null at end of stream. */
  async readFrame(timeoutMs = 5_000): Promise<Frame | null> {
    const read = async (): Promise<Frame | null> => {
      while (true) {
        const b = this.#buf;
        if (b.length >= 2) {
          let len = b[1] & 0x7f;
          let off = 2;
          if (len === 126 && b.length >= 4) {
            len = (b[2] << 8) | b[3];
            off = 4;
          } else if (len === 127 && b.length >= 10) {
            len = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(2));
            off = 10;
          }
          if ((len < 126 || off > 2) && b.length >= off + len) {
            const frame = { opcode: b[0] & 0x0f, payload: b.slice(off, off + len) };
            this.#buf = b.subarray(off + len);
            return frame;
          }
        }
        if (!(await this.#fill())) return null;
      }
    };
    return await withTimeout(read(), timeoutMs, "a frame from the server");
  }

  /** Reads frames until a close frame; returns its code (1005 without one, null at EOF). */
  async readClose(timeoutMs = 5_000): Promise<{ code: number | null; messages: Frame[] }> {
    const messages: Frame[] = [];
    while (true) {
      const frame = await this.readFrame(timeoutMs);
      if (frame === null) return { code: null, messages };
      if (frame.opcode === OP.close) {
        const code = frame.payload.length >= 2 ? (frame.payload[0] << 8) | frame.payload[1] : 1005;
        return { code, messages };
      }
      messages.push(frame);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** Decodes a frame's payload as text. */
export function text(frame: Frame | null): string | null {
  return frame ? decoder.decode(frame.payload) : null;
}
