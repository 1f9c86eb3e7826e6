/**
 * Consuming a RabbitMQ queue without losing messages: manual acks with a
 * prefetch window, deliveries handed over in batches (everything that
 * arrived since the last batch, in order), acks only after the handler has
 * dealt with a message, and a consumer that resumes by itself after the
 * connection comes back. What was delivered but not acked when a
 * connection dropped, or when the consumer is paused or stopped, goes back
 * to the queue and is delivered again.
 *
 * @module
 */
import type { Channel, ChannelModel, ConsumeMessage, Replies } from "amqplib";
import { AmqpFatalError, AmqpLink, type BackoffOptions } from "./amqp.ts";
import type { Logger } from "../cli/log.ts";

/** How a handler settles the messages of its batch. */
export interface Settle {
  /** Acknowledges `message` and every earlier unsettled one of the batch. */
  ack(message: ConsumeMessage): void;
  /** Rejects one message; without requeue it is dead-lettered or dropped by the broker. */
  reject(message: ConsumeMessage, requeue?: boolean): void;
}

/**
 * Handles a batch of deliveries in order. Returning `false` ends the
 * delivery loop (`finished` resolves; call `stop()` to close); messages it
 * did not settle go back to the queue.
 */
export type BatchHandler = (
  batch: ConsumeMessage[],
  settle: Settle,
) => Promise<boolean | void>;

/** Options for {@link QueueConsumer.open}. */
export interface ConsumerOptions {
  /** The queue to declare and consume. */
  queue: string;
  /** Handles deliveries, a batch at a time. */
  handle: BatchHandler;
  /** Where diagnostics go. */
  logger: Logger;
  /** Declare the queue durable. Default false (as the book). */
  durable?: boolean;
  /** Declare the queue with this dead-letter exchange (`x-dead-letter-exchange`). Default none. */
  deadLetterExchange?: string;
  /** Bind the queue to this existing exchange with this routing key. Default none. */
  bind?: { exchange: string; routingKey: string };
  /** Most unacknowledged messages the broker sends ahead. Default 100. */
  prefetch?: number;
  /** Start consuming at once; false waits for {@link QueueConsumer.resume}. Default true. */
  start?: boolean;
  /** How long to try reaching the broker at start, in ms. Default 30000. */
  connectTimeoutMs?: number;
  /** Reconnect delays. Default 100 ms doubling up to 5 s. */
  backoff?: BackoffOptions;
  /** CA certificates (PEM) for an amqps:// broker, beyond the system's. Default none. */
  ca?: string[];
  /** Aborting it while connecting stops trying. */
  signal?: AbortSignal;
  /** Called after each (re)connect with the declared queue and how many connects so far. */
  onReady?: (queue: Replies.AssertQueue, connects: number) => void;
}

interface Delivery {
  message: ConsumeMessage;
  channel: Channel;
}

/** Consumes one queue with manual acks, reconnecting and resuming by itself. */
export class QueueConsumer implements AsyncDisposable {
  /** Settles when the consumer has stopped; rejects with the failure that stopped it. */
  readonly finished: Promise<void>;
  #options: ConsumerOptions;
  #link: AmqpLink | null = null;
  #channel: Channel | null = null;
  #tag: string | null = null;
  #paused: boolean;
  #stopped = false;
  #closed = false;
  #failure: Error | null = null;
  #buffer: Delivery[] = [];
  #wake: (() => void) | null = null;

  private constructor(options: ConsumerOptions) {
    this.#options = options;
    this.#paused = options.start === false;
    this.finished = this.#loop();
    this.finished.catch(() => {}); // Reported to whoever awaits it.
  }

  /** Connects (retrying until `connectTimeoutMs`), declares the queue and starts consuming. */
  static async open(url: string, options: ConsumerOptions): Promise<QueueConsumer> {
    const consumer = new QueueConsumer(options);
    try {
      consumer.#link = await AmqpLink.open(url, {
        logger: options.logger,
        connectTimeoutMs: options.connectTimeoutMs,
        backoff: options.backoff,
        ca: options.ca,
        signal: options.signal,
        setup: (model, connects) => consumer.#setup(model, connects),
        onDisconnect: () => {
          consumer.#channel = null;
          consumer.#tag = null;
        },
      });
    } catch (error) {
      consumer.#fail(error as Error);
      throw error;
    }
    consumer.#link.failed.catch((error) => consumer.#fail(error));
    return consumer;
  }

  async #setup(model: ChannelModel, connects: number): Promise<void> {
    const o = this.#options;
    const channel = await model.createChannel();
    channel.on("error", (error: Error) => {
      this.#fail(new AmqpFatalError(`The broker closed the channel: ${error.message}`));
    });
    await channel.prefetch(o.prefetch ?? 100);
    const args = o.deadLetterExchange === undefined
      ? undefined
      : { "x-dead-letter-exchange": o.deadLetterExchange };
    const queue = await channel.assertQueue(o.queue, {
      durable: o.durable ?? false,
      arguments: args,
    });
    if (o.bind) await channel.bindQueue(o.queue, o.bind.exchange, o.bind.routingKey);
    this.#channel = channel;
    if (!this.#paused && !this.#stopped) await this.#consume(channel);
    o.onReady?.(queue, connects);
  }

  async #consume(channel: Channel): Promise<void> {
    // Our own tag, known before consume-ok: deliveries (and a pause) may come first.
    const consumerTag = `netkit.${crypto.randomUUID()}`;
    this.#tag = consumerTag;
    await channel.consume(this.#options.queue, (message) => {
      if (message === null) {
        this.#fail(new AmqpFatalError(`Queue "${this.#options.queue}" was deleted`));
        return;
      }
      this.#buffer.push({ message, channel });
      this.#wakeLoop();
    }, { noAck: false, consumerTag });
  }

  #wakeLoop(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#wakeLoop();
  }

  async #loop(): Promise<void> {
    while (true) {
      while (this.#buffer.length === 0 && !this.#stopped && !this.#failure) {
        await new Promise<void>((resolve) => this.#wake = resolve);
      }
      if (this.#failure) throw this.#failure;
      if (this.#stopped && this.#buffer.length === 0) return;
      const channel = this.#channel;
      const batch = this.#buffer.filter((d) => d.channel === channel).map((d) => d.message);
      this.#buffer = [];
      if (channel === null || batch.length === 0) continue; // Stale: the broker requeued them.
      let more;
      try {
        more = await this.#options.handle(batch, settleOn(channel));
      } catch (error) {
        this.#fail(error as Error);
        throw error;
      }
      if (more === false) {
        this.#stopped = true; // The owner's stop() closes the channel.
        return;
      }
    }
  }

  /**
   * Stops deliveries and returns every delivered, unsettled message to
   * the queue (to this or another consumer); {@link resume} starts again.
   */
  async pause(): Promise<void> {
    if (this.#paused) return;
    this.#paused = true;
    const channel = this.#channel;
    this.#buffer = [];
    if (channel === null) return;
    try {
      if (this.#tag !== null) await channel.cancel(this.#tag);
      this.#tag = null;
      channel.nackAll(true);
    } catch {
      // The channel is gone; the broker requeues everything unacked itself.
    }
    this.#buffer = [];
  }

  /** Starts deliveries again after {@link pause}. */
  async resume(): Promise<void> {
    if (!this.#paused || this.#stopped) return;
    this.#paused = false;
    const channel = this.#channel;
    if (channel !== null && this.#tag === null) await this.#consume(channel);
  }

  /**
   * Cancels the consumer, lets the handler finish its batch, and closes:
   * unacked messages go back to the queue.
   */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopped = true;
    const channel = this.#channel;
    if (channel !== null && this.#tag !== null) await channel.cancel(this.#tag).catch(() => {});
    this.#buffer = [];
    this.#wakeLoop();
    await this.finished.catch(() => {});
    this.#channel = null;
    if (channel !== null) await channel.close().catch(() => {});
    await this.#link?.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** Acks and rejects on one channel; a channel that closed meanwhile is ignored (redelivery). */
function settleOn(channel: Channel): Settle {
  return {
    ack(message) {
      try {
        channel.ack(message, true);
      } catch {
        // Channel closed: the broker delivers the message again.
      }
    },
    reject(message, requeue = false) {
      try {
        channel.reject(message, requeue);
      } catch {
        // Channel closed: the broker delivers the message again.
      }
    },
  };
}
