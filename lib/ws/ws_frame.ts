/**
 * The WebSocket frame codec of RFC 6455 for the server side: an incremental
 * reader that checks every rule of a client's frames (masking, RSV bits,
 * opcodes, control frames, fragmentation, UTF-8, close codes, the message
 * bound) from the frame header on, and an encoder of unmasked frames that
 * reuses the last frame it made for the same payload (a broadcast).
 *
 * @module
 */
import type { ByteWindow } from "../io/read_buffer.ts";

/** A continuation frame. */
export const OP_CONTINUATION = 0x0;
/** A text frame. */
export const OP_TEXT = 0x1;
/** A binary frame. */
export const OP_BINARY = 0x2;
/** A close frame. */
export const OP_CLOSE = 0x8;
/** A ping frame. */
export const OP_PING = 0x9;
/** A pong frame. */
export const OP_PONG = 0xa;

/** Normal closure. */
export const CLOSE_NORMAL = 1000;
/** The server is going away (shutdown, or an idle peer that did not answer a ping). */
export const CLOSE_GOING_AWAY = 1001;
/** The peer broke the protocol. */
export const CLOSE_PROTOCOL_ERROR = 1002;
/** Reported (never sent) when a close frame had no code. */
export const CLOSE_NO_STATUS = 1005;
/** Reported (never sent) when the connection ended without a close handshake. */
export const CLOSE_ABNORMAL = 1006;
/** A text message or close reason that is not UTF-8. */
export const CLOSE_INVALID_DATA = 1007;
/** Policy violation: here, a peer that reads too slowly, or a bad first message. */
export const CLOSE_POLICY = 1008;
/** A message above the size bound. */
export const CLOSE_TOO_BIG = 1009;
/** The server failed handling a message. */
export const CLOSE_SERVER_ERROR = 1011;
/** Try again later: the server is overloaded (here, by this peer's unread bytes). */
export const CLOSE_TRY_AGAIN = 1013;

/** Longest control frame payload (RFC 6455 5.5). */
export const MAX_CONTROL_PAYLOAD = 125;
/** Longest close reason in bytes: a control payload less the two-byte code. */
export const MAX_CLOSE_REASON_BYTES = MAX_CONTROL_PAYLOAD - 2;
/** Longest frame header a client sends: 2 bytes, 8 of length, 4 of mask. */
export const MAX_CLIENT_HEADER_BYTES = 14;

const CLOSE_NAMES: Record<number, string> = {
  1000: "normal",
  1001: "going away",
  1002: "protocol error",
  1003: "unsupported data",
  1005: "no status",
  1006: "abnormal closure",
  1007: "invalid payload data",
  1008: "policy violation",
  1009: "message too big",
  1011: "internal server error",
  1013: "try again later",
};

/** A close code as logs show it, the way gorilla words it: `1000 (normal)`. */
export function describeClose(code: number): string {
  const name = CLOSE_NAMES[code];
  return name ? `${code} (${name})` : String(code);
}

/**
 * Whether a peer may send this close code: the codes RFC 6455 and the IANA
 * registry define for the wire (1000-1003, 1007-1014), and 3000-4999 for
 * libraries and applications. 1004-1006 and 1015 are never sent.
 */
export function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

/** A rule of RFC 6455 that the peer broke: the close code to answer with and why. */
export class WsProtocolError extends Error {
  /** The close code for the peer: 1002, 1007 or 1009. */
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = "WsProtocolError";
    this.code = code;
  }
}

/**
 * A whole message as the reader hands it on, valid only during the call:
 * its payload may be a view into the read buffer, and the object is reused
 * for the next message. A text message's UTF-8 is already checked; its
 * text is decoded only when asked for.
 */
export class WsMessage {
  /** Whether it came as binary (else as text). */
  binary = false;
  /** The message's bytes. */
  payload: Uint8Array = NO_BYTES;
  #text: string | null = null;

  /** @internal Points the message at a new payload (and its text, when already decoded). */
  reset(binary: boolean, payload: Uint8Array, text: string | null): this {
    this.binary = binary;
    this.payload = payload;
    this.#text = text;
    return this;
  }

  /** The payload as text (a binary message's bytes decoded leniently). */
  get text(): string {
    return this.#text ??= lenientDecoder.decode(this.payload);
  }

  /** Its text, or its bytes (a copy) when binary. */
  get data(): string | Uint8Array {
    return this.binary ? this.payload.slice() : this.text;
  }
}

/** What the reader hands on: whole messages and control frames. */
export interface FrameHandler {
  /** A whole message (see {@link WsMessage} for how long it stays valid). */
  onMessage(message: WsMessage): void;
  /** A ping, pong or close frame (its payload, valid during the call, already checked). */
  onControl(opcode: number, payload: Uint8Array): void;
}

const NO_BYTES = new Uint8Array(0);
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lenientDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Whether every byte is ASCII: the common case, checked without a call into the runtime. */
function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.byteLength; i++) if (bytes[i] & 0x80) return false;
  return true;
}

/** Decodes UTF-8 or throws a 1007 {@link WsProtocolError}. */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new WsProtocolError(CLOSE_INVALID_DATA, `${what} is not valid UTF-8`);
  }
}

/** A close frame's code and reason; throws 1002 or 1007 for a malformed one. */
export function parseClosePayload(payload: Uint8Array): { code: number; reason: string } {
  if (payload.byteLength === 0) return { code: CLOSE_NO_STATUS, reason: "" };
  if (payload.byteLength === 1) {
    throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, "close frame with a one-byte payload");
  }
  const code = (payload[0] << 8) | payload[1];
  if (!validCloseCode(code)) {
    throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, `invalid close code ${code}`);
  }
  return { code, reason: decodeUtf8(payload.subarray(2), "close reason") };
}

/**
 * Reads client frames out of a {@link ByteWindow} as bytes arrive, in any
 * chunking: call {@link feed} after each read; it consumes every whole frame,
 * unmasks it in place, and hands messages and control frames to the handler.
 * A frame that breaks a rule throws a {@link WsProtocolError} as soon as its
 * header shows it, so an oversize payload is never waited for.
 */
export class FrameReader {
  /** Largest message in bytes (all fragments together). */
  readonly maxMessageBytes: number;
  /** The opcode of the fragmented message being received, or 0. */
  #messageOpcode = 0;
  #fragments: Uint8Array[] = [];
  #fragmentBytes = 0;
  #decoder: TextDecoder | null = null;
  #text = "";
  /** The header of the frame whose payload has not fully arrived, 0 when none. */
  #headerBytes = 0;
  #payloadBytes = 0;
  #message: WsMessage | null = null;

  constructor(maxMessageBytes: number) {
    this.maxMessageBytes = maxMessageBytes;
  }

  /**
   * Bytes a whole frame may need in the read buffer: the caller reads with
   * this bound, so a frame within the message bound always fits.
   */
  get maxPending(): number {
    return this.maxMessageBytes + MAX_CLIENT_HEADER_BYTES;
  }

  /** Consumes every whole frame in `w`, advancing `w.start`; throws on a broken rule. */
  feed(w: ByteWindow, handler: FrameHandler): void {
    const buf = w.buf;
    while (true) {
      let header = this.#headerBytes;
      let length = this.#payloadBytes;
      const start = w.start;
      const available = w.end - start;
      if (header === 0) {
        if (available < 2) return;
        const b0 = buf[start];
        const b1 = buf[start + 1];
        // The first two bytes decide most rules: checked before waiting for more.
        this.#check(b0, b1);
        header = 6;
        length = b1 & 0x7f;
        if (length === 126) header = 8;
        else if (length === 127) header = 14;
        if (available < header) return;
        if (length === 126) length = (buf[start + 2] << 8) | buf[start + 3];
        else if (length === 127) length = this.#longLength(buf, start + 2);
        if ((b0 & 0x08) === 0 && this.#fragmentBytes + length > this.maxMessageBytes) {
          throw new WsProtocolError(
            CLOSE_TOO_BIG,
            `message too big: limit is ${this.maxMessageBytes} bytes`,
          );
        }
        this.#headerBytes = header;
        this.#payloadBytes = length;
      }
      if (available < header + length) return;
      this.#headerBytes = 0;
      const payload = buf.subarray(start + header, start + header + length);
      unmask(payload, buf, start + header - 4);
      w.start = start + header + length;
      this.#deliver(buf[start], payload, handler);
    }
  }

  #longLength(buf: Uint8Array, at: number): number {
    if (buf[at] & 0x80) {
      throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, "64-bit length with the top bit set");
    }
    let high = 0;
    for (let i = 0; i < 4; i++) high = high * 256 + buf[at + i];
    let low = 0;
    for (let i = 4; i < 8; i++) low = low * 256 + buf[at + i];
    return high * 2 ** 32 + low;
  }

  /** The rules a frame's first two bytes decide, so that nothing more is read for a frame refused. */
  #check(b0: number, b1: number): void {
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    const length = b1 & 0x7f;
    if (b0 & 0x70) throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, "RSV bits set");
    if (!(b1 & 0x80)) throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, "unmasked client frame");
    if (opcode >= 0x8) {
      if (opcode > OP_PONG) {
        throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, `reserved opcode ${opcode}`);
      }
      if (!fin) throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, "fragmented control frame");
      if (length > MAX_CONTROL_PAYLOAD) {
        throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, "control frame over 125 bytes");
      }
      return;
    }
    if (opcode > OP_BINARY) {
      throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, `reserved opcode ${opcode}`);
    }
    if (opcode === OP_CONTINUATION) {
      if (this.#messageOpcode === 0) {
        throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, "continuation with no message open");
      }
    } else if (this.#messageOpcode !== 0) {
      throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one");
    }
  }

  #deliver(b0: number, payload: Uint8Array, handler: FrameHandler): void {
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    if (opcode >= 0x8) {
      if (opcode === OP_CLOSE) parseClosePayload(payload);
      handler.onControl(opcode, payload);
      return;
    }
    if (fin && opcode !== OP_CONTINUATION) {
      const binary = opcode === OP_BINARY;
      const text = binary || isAscii(payload) ? null : decodeUtf8(payload, "text message");
      handler.onMessage((this.#message ??= new WsMessage()).reset(binary, payload, text));
      return;
    }
    if (opcode !== OP_CONTINUATION) {
      this.#messageOpcode = opcode;
      if (opcode === OP_TEXT) {
        this.#decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
      }
    }
    // Each fragment is checked as it comes, so bad UTF-8 fails fast.
    if (this.#decoder) {
      try {
        this.#text += this.#decoder.decode(payload, { stream: !fin });
      } catch {
        throw new WsProtocolError(CLOSE_INVALID_DATA, "text message is not valid UTF-8");
      }
    }
    this.#fragments.push(payload.slice());
    this.#fragmentBytes += payload.byteLength;
    if (!fin) return;
    const whole = concatBytes(this.#fragments, this.#fragmentBytes);
    const text = this.#decoder ? this.#text : null;
    const binary = this.#messageOpcode === OP_BINARY;
    this.#messageOpcode = 0;
    this.#fragments = [];
    this.#fragmentBytes = 0;
    this.#decoder = null;
    this.#text = "";
    handler.onMessage((this.#message ??= new WsMessage()).reset(binary, whole, text));
  }
}

/** XORs `payload` in place with the 4-byte mask at `buf[maskAt..]`. */
function unmask(payload: Uint8Array, buf: Uint8Array, maskAt: number): void {
  const m0 = buf[maskAt], m1 = buf[maskAt + 1], m2 = buf[maskAt + 2], m3 = buf[maskAt + 3];
  const n = payload.byteLength;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    payload[i] ^= m0;
    payload[i + 1] ^= m1;
    payload[i + 2] ^= m2;
    payload[i + 3] ^= m3;
  }
  for (; i < n; i++) payload[i] ^= buf[maskAt + (i & 3)];
}

/** One buffer holding `parts` in order; `total` is their summed length. */
export function concatBytes(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** The size of an unmasked frame (a server's) with a payload of `length` bytes. */
export function frameSize(length: number): number {
  return length + (length < 126 ? 2 : length < 65536 ? 4 : 10);
}

/**
 * Writes the header of an unmasked, final frame at `buf[at..]`; returns its
 * size (2, 4 or 10 bytes).
 */
export function writeFrameHeader(
  buf: Uint8Array,
  at: number,
  opcode: number,
  length: number,
): number {
  buf[at] = 0x80 | opcode;
  if (length < 126) {
    buf[at + 1] = length;
    return 2;
  }
  if (length < 65536) {
    buf[at + 1] = 126;
    buf[at + 2] = length >>> 8;
    buf[at + 3] = length & 0xff;
    return 4;
  }
  buf[at + 1] = 127;
  const high = Math.floor(length / 2 ** 32);
  buf[at + 2] = high >>> 24;
  buf[at + 3] = (high >>> 16) & 0xff;
  buf[at + 4] = (high >>> 8) & 0xff;
  buf[at + 5] = high & 0xff;
  buf[at + 6] = length >>> 24;
  buf[at + 7] = (length >>> 16) & 0xff;
  buf[at + 8] = (length >>> 8) & 0xff;
  buf[at + 9] = length & 0xff;
  return 10;
}

/** Encodes one unmasked, final frame (a server's frame): header and payload in one buffer. */
export function encodeFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(frameSize(payload.byteLength));
  frame.set(payload, writeFrameHeader(frame, 0, opcode, payload.byteLength));
  return frame;
}

/** A close frame's payload: the code and a reason cut to 123 bytes on a character boundary. */
export function closePayload(code: number, reason = ""): Uint8Array {
  let bytes = encoder.encode(reason);
  if (bytes.byteLength > MAX_CLOSE_REASON_BYTES) {
    let cut = MAX_CLOSE_REASON_BYTES;
    while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--;
    bytes = bytes.subarray(0, cut);
  }
  const payload = new Uint8Array(2 + bytes.byteLength);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(bytes, 2);
  return payload;
}

const encoder = new TextEncoder();

/**
 * Encodes frames for many peers: the same payload object sent again with
 * the same opcode (a broadcast's loop over its members) gets the frame
 * already made, so its bytes are encoded once and shared.
 */
export class FrameCache {
  #payload: Uint8Array | null = null;
  #opcode = 0;
  #frame: Uint8Array | null = null;

  /** The frame for `payload`, made once per distinct payload object in a row. */
  frame(opcode: number, payload: Uint8Array): Uint8Array {
    if (payload === this.#payload && opcode === this.#opcode) return this.#frame!;
    const frame = encodeFrame(opcode, payload);
    this.#payload = payload;
    this.#opcode = opcode;
    this.#frame = frame;
    return frame;
  }
}
