/**
 * Publishing many messages cheaply. amqplib encodes each message into
 * three fresh buffers and pushes them through a stream one by one, which
 * costs several microseconds per message; {@link PublishBatch} encodes
 * the `basic.publish` method, content header and body frames of many
 * messages back to back into one buffer and hands that buffer to the
 * channel's own write queue, so frames keep their order with everything
 * else amqplib sends, and registers each message's confirm callback with
 * the channel exactly as `sendToQueue` would. Where amqplib's internals are
 * not what it expects, {@link PublishBatch.for} returns null and callers
 * use `sendToQueue`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Channel } from "amqplib";

const FRAME_METHOD = 1;
const FRAME_HEADER = 2;
const FRAME_BODY = 3;
const FRAME_END = 0xce;
const FRAME_OVERHEAD = 8; // type, channel, size ... frame-end
const CLASS_BASIC = 60;
const METHOD_PUBLISH = 40;
const FLAG_CONTENT_TYPE = 0x8000;
const FLAG_DELIVERY_MODE = 0x1000;
/** Flush a batch once it holds this many bytes: big enough to amortise, small enough to stream. */
const BATCH_BYTES = 64 * 1024;

/** What every message of a batch carries. */
export interface PublishProps {
  /** Content type, e.g. `text/plain`. */
  contentType: string;
  /** Delivery mode 2 (persistent) instead of transient. */
  persistent: boolean;
  /** Ask the broker to return unroutable messages. */
  mandatory: boolean;
}

/** A confirm callback, as amqplib's ConfirmChannel takes them. */
export type ConfirmCallback = (error: Error | null) => void;

/** The parts of amqplib's channel internals that batching relies on. */
interface ChannelInternals {
  ch: number;
  pushConfirmCallback?: (cb: ConfirmCallback | false) => void;
  connection: {
    frameMax: number;
    sentSinceLastCheck: boolean;
    channels: Array<{ channel: unknown; buffer: { write(chunk: Buffer): boolean } } | null>;
  };
}

function internals(channel: Channel): ChannelInternals | null {
  const c = channel as unknown as Partial<ChannelInternals>;
  const conn = c.connection;
  if (typeof c.ch !== "number" || !conn || typeof conn.frameMax !== "number") return null;
  const slot = conn.channels?.[c.ch];
  if (!slot || slot.channel !== channel || typeof slot.buffer?.write !== "function") return null;
  return c as ChannelInternals;
}

/** Encodes the three (or more) frames of one publish to the default exchange at `offset`. */
export function encodePublish(
  target: Uint8Array,
  offset: number,
  channel: number,
  routingKey: Uint8Array,
  contentType: Uint8Array,
  flags: { persistent: boolean; mandatory: boolean },
  body: Uint8Array,
  frameMax: number,
): number {
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  let o = offset;
  // basic.publish: reserved-1, exchange "" (default), routing key, mandatory|immediate bits.
  const methodSize = 4 + 2 + 1 + 1 + routingKey.byteLength + 1;
  view.setUint8(o, FRAME_METHOD);
  view.setUint16(o + 1, channel);
  view.setUint32(o + 3, methodSize);
  o += 7;
  view.setUint16(o, CLASS_BASIC);
  view.setUint16(o + 2, METHOD_PUBLISH);
  view.setUint16(o + 4, 0);
  view.setUint8(o + 6, 0);
  view.setUint8(o + 7, routingKey.byteLength);
  target.set(routingKey, o + 8);
  o += 8 + routingKey.byteLength;
  view.setUint8(o++, flags.mandatory ? 1 : 0);
  view.setUint8(o++, FRAME_END);
  // Content header: class, weight, body size, property flags, content-type, delivery-mode.
  const headerSize = 2 + 2 + 8 + 2 + 1 + contentType.byteLength + (flags.persistent ? 1 : 0);
  view.setUint8(o, FRAME_HEADER);
  view.setUint16(o + 1, channel);
  view.setUint32(o + 3, headerSize);
  o += 7;
  view.setUint16(o, CLASS_BASIC);
  view.setUint16(o + 2, 0);
  view.setUint32(o + 4, Math.floor(body.byteLength / 2 ** 32));
  view.setUint32(o + 8, body.byteLength >>> 0);
  view.setUint16(o + 12, FLAG_CONTENT_TYPE | (flags.persistent ? FLAG_DELIVERY_MODE : 0));
  view.setUint8(o + 14, contentType.byteLength);
  target.set(contentType, o + 15);
  o += 15 + contentType.byteLength;
  if (flags.persistent) view.setUint8(o++, 2);
  view.setUint8(o++, FRAME_END);
  // Body frames, split at frameMax.
  const maxBody = frameMax - FRAME_OVERHEAD;
  for (let start = 0; start < body.byteLength; start += maxBody) {
    const part = body.subarray(start, Math.min(body.byteLength, start + maxBody));
    view.setUint8(o, FRAME_BODY);
    view.setUint16(o + 1, channel);
    view.setUint32(o + 3, part.byteLength);
    target.set(part, o + 7);
    o += 7 + part.byteLength;
    view.setUint8(o++, FRAME_END);
  }
  return o;
}

/** Bytes {@link encodePublish} writes for one message. */
export function publishSize(
  routingKey: Uint8Array,
  contentType: Uint8Array,
  persistent: boolean,
  bodyBytes: number,
  frameMax: number,
): number {
  const method = FRAME_OVERHEAD + 4 + 2 + 1 + 1 + routingKey.byteLength + 1;
  const header = FRAME_OVERHEAD + 14 + 1 + contentType.byteLength + (persistent ? 1 : 0);
  const frames = Math.max(0, Math.ceil(bodyBytes / (frameMax - FRAME_OVERHEAD)));
  return method + header + frames * FRAME_OVERHEAD + bodyBytes;
}

/**
 * Messages for one queue on one channel, encoded as they are added and
 * written to the channel in one chunk by {@link flush}.
 */
export class PublishBatch {
  #channel: Channel;
  #internals: ChannelInternals;
  #routingKey: Uint8Array;
  #contentType: Uint8Array;
  #props: PublishProps;
  #buf: Buffer = Buffer.allocUnsafe(BATCH_BYTES);
  #view: DataView = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
  #used = 0;
  /** Method and header frames of an empty message: the same bytes for every message but its size. */
  #template: Uint8Array;
  /** Where the 8-byte body size sits in the template. */
  #sizeAt: number;
  #callbacks: Array<ConfirmCallback | false> = [];
  #confirm: boolean;

  private constructor(
    channel: Channel,
    inner: ChannelInternals,
    queue: string,
    props: PublishProps,
    confirm: boolean,
  ) {
    this.#channel = channel;
    this.#internals = inner;
    this.#confirm = confirm;
    this.#routingKey = new TextEncoder().encode(queue);
    this.#contentType = new TextEncoder().encode(props.contentType);
    this.#props = props;
    const { persistent, mandatory } = props;
    this.#template = new Uint8Array(
      publishSize(this.#routingKey, this.#contentType, persistent, 0, inner.connection.frameMax),
    );
    encodePublish(
      this.#template,
      0,
      inner.ch,
      this.#routingKey,
      this.#contentType,
      { persistent, mandatory },
      new Uint8Array(0),
      inner.connection.frameMax,
    );
    // Method frame, then the header frame's type, channel, size, class and weight.
    this.#sizeAt = FRAME_OVERHEAD + 4 + 2 + 1 + 1 + this.#routingKey.byteLength + 1 + 7 + 4;
  }

  /**
   * A batch for `channel` (`confirm`: a ConfirmChannel, whose callbacks
   * must be registered), or null if amqplib's internals are not as expected.
   */
  static for(
    channel: Channel,
    queue: string,
    props: PublishProps,
    confirm: boolean,
  ): PublishBatch | null {
    const inner = internals(channel);
    if (inner === null) return null;
    if (confirm && typeof inner.pushConfirmCallback !== "function") return null;
    if (new TextEncoder().encode(queue).byteLength > 255) return null;
    return new PublishBatch(channel, inner, queue, props, confirm);
  }

  /** Messages added since the last flush. */
  get size(): number {
    return this.#callbacks.length;
  }

  /** Whether the batch is big enough to flush. */
  get full(): boolean {
    return this.#used >= BATCH_BYTES / 2;
  }

  /** Encodes one message; `onConfirm` is called with the broker's ack or nack (confirm channels). */
  add(body: Uint8Array, onConfirm?: ConfirmCallback): void {
    const frameMax = this.#internals.connection.frameMax;
    const n = body.byteLength;
    if (n > frameMax - FRAME_OVERHEAD) {
      this.#addLarge(body, frameMax);
    } else {
      const size = this.#template.byteLength + (n > 0 ? FRAME_OVERHEAD + n : 0);
      if (this.#used + size > this.#buf.byteLength) this.#grow(size);
      const buf = this.#buf;
      const view = this.#view;
      let o = this.#used;
      buf.set(this.#template, o);
      view.setUint32(o + this.#sizeAt + 4, n); // The high half stays 0: n < frameMax.
      o += this.#template.byteLength;
      if (n > 0) {
        buf[o] = FRAME_BODY;
        view.setUint16(o + 1, this.#internals.ch);
        view.setUint32(o + 3, n);
        buf.set(body, o + 7);
        o += 7 + n;
        buf[o++] = FRAME_END;
      }
      this.#used = o;
    }
    this.#callbacks.push(onConfirm ?? false);
  }

  #addLarge(body: Uint8Array, frameMax: number): void {
    const { persistent, mandatory } = this.#props;
    const size = publishSize(
      this.#routingKey,
      this.#contentType,
      persistent,
      body.byteLength,
      frameMax,
    );
    if (this.#used + size > this.#buf.byteLength) this.#grow(size);
    this.#used = encodePublish(
      this.#buf,
      this.#used,
      this.#internals.ch,
      this.#routingKey,
      this.#contentType,
      { persistent, mandatory },
      body,
      frameMax,
    );
  }

  #grow(size: number): void {
    const bigger = Buffer.allocUnsafe(Math.max(this.#buf.byteLength * 2, this.#used + size));
    bigger.set(this.#buf.subarray(0, this.#used));
    this.#setBuffer(bigger);
  }

  #setBuffer(buf: Buffer): void {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /**
   * Writes what was added to the channel, in one chunk, and registers the
   * confirm callbacks. Returns false when the channel asks the caller to
   * wait for its `drain` event; throws if the channel has closed.
   */
  flush(): boolean {
    if (this.#used === 0) return true;
    const inner = this.#internals;
    const slot = inner.connection.channels[inner.ch];
    if (!slot || slot.channel !== this.#channel) throw new Error("Channel closed");
    const chunk = this.#buf.subarray(0, this.#used);
    this.#setBuffer(Buffer.allocUnsafe(Math.max(BATCH_BYTES, this.#used)));
    this.#used = 0;
    const callbacks = this.#callbacks;
    this.#callbacks = [];
    inner.connection.sentSinceLastCheck = true;
    const flowing = slot.buffer.write(chunk);
    if (this.#confirm) {
      for (const cb of callbacks) inner.pushConfirmCallback!.call(this.#channel, cb);
    }
    return flowing;
  }
}
