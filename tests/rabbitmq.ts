/**
 * The RabbitMQ broker for the tests (mq_* and the chat bus): whether it is
 * there (reported as a skip outside CI, a failure in CI), a fresh queue or
 * exchange name per test that is deleted afterwards, reading a queue
 * directly, and stopping and starting the broker's application around a
 * block.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import amqp from "amqplib";
import { delay, hasCommand, withTimeout } from "./helpers.ts";

/** The broker the tests use. */
export const BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/";

async function reachable(): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: 5672 });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * A script's arguments for the test broker and a queue: `--url ... --queue
 * NAME ...args`, with 30 s to reach the broker (not the 5 s default): other
 * test files restart the shared broker, and a test must ride that out.
 */
export function onQueue(queue: string, ...args: string[]): string[] {
  return ["--url", BROKER_URL, "--queue", queue, "--connect-timeout", "30s", ...args];
}

/** As {@link onQueue}, with amqp-tools' short `-u` and no queue, for tests of the short flags. */
export function onBroker(...args: string[]): string[] {
  return ["-u", BROKER_URL, "--connect-timeout", "30s", ...args];
}

/** Runs `rabbitmqctl ARGS`, failing with its output. */
export async function rabbitmqctl(...args: string[]): Promise<void> {
  const out = await new Deno.Command("rabbitmqctl", { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`rabbitmqctl ${args.join(" ")} failed: ${text}`);
  }
}

/** Waits until the broker accepts AMQP connections (another test may be restarting it). */
export async function awaitBroker(timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await reachable()) {
      try {
        const conn = await amqp.connect(BROKER_URL, { timeout: 5000 });
        await conn.close();
        return true;
      } catch {
        // Starting up: the port is open before the broker accepts logins.
      }
    }
    await delay(250);
  }
  return false;
}

/**
 * Whether the broker tests are ignored: only outside CI, with the reason
 * printed. In CI (env CI set) they run, and fail, when the broker is missing.
 */
export const brokerMissing: boolean = await (async () => {
  if (await awaitBroker(hasCommand("rabbitmqctl") ? 20_000 : 2_000)) return false;
  if (Deno.env.get("CI")) return false;
  console.error(
    "(skipping the RabbitMQ tests: nothing accepts AMQP logins on 127.0.0.1:5672 as " +
      "guest/guest; start it with `rabbitmq-server -detached` or `docker compose up -d`)",
  );
  return true;
})();

/** A fresh queue name (`netkit.test.<uuid>`), its queue deleted from the broker when disposed. */
export function testQueue(prefix = "netkit.test"): { name: string } & AsyncDisposable {
  const name = `${prefix}.${crypto.randomUUID()}`;
  return {
    name,
    async [Symbol.asyncDispose]() {
      await deleteQueues(name);
    },
  };
}

/** Deletes queues (and exchanges) if they exist. */
export async function deleteQueues(...names: string[]): Promise<void> {
  if (!(await awaitBroker())) return;
  const conn = await amqp.connect(BROKER_URL);
  try {
    const channel = await conn.createChannel();
    for (const name of names) {
      await channel.deleteQueue(name);
      await channel.deleteExchange(name);
    }
    await channel.close();
  } finally {
    await conn.close();
  }
}

/** A plain amqplib connection for a test to publish, inspect and read queues with. */
export class Broker implements AsyncDisposable {
  #conn: amqp.ChannelModel;
  readonly channel: amqp.ConfirmChannel;

  private constructor(conn: amqp.ChannelModel, channel: amqp.ConfirmChannel) {
    this.#conn = conn;
    this.channel = channel;
  }

  static async connect(): Promise<Broker> {
    const conn = await amqp.connect(BROKER_URL);
    conn.on("error", () => {});
    const channel = await conn.createConfirmChannel();
    channel.on("error", () => {});
    return new Broker(conn, channel);
  }

  /** Publishes bodies to a queue and waits for the broker's confirms. */
  async publish(queue: string, bodies: Array<string | Uint8Array>): Promise<void> {
    for (const body of bodies) {
      this.channel.sendToQueue(queue, Buffer.from(body), { contentType: "text/plain" });
    }
    await this.channel.waitForConfirms();
  }

  /** Messages ready in a queue. */
  async count(queue: string): Promise<number> {
    return (await this.channel.checkQueue(queue)).messageCount;
  }

  /** Waits until a queue has no consumer left (a killed one is noticed, its messages requeued). */
  async awaitNoConsumers(queue: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.channel.checkQueue(queue)).consumerCount > 0) {
      if (Date.now() > deadline) throw new Error(`Queue "${queue}" still has consumers`);
      await delay(50);
    }
  }

  /** Takes up to `max` messages from a queue (acked), as strings. */
  async drain(queue: string, max = Infinity): Promise<string[]> {
    const bodies: string[] = [];
    while (bodies.length < max) {
      const message = await this.channel.get(queue, { noAck: true });
      if (message === false) break;
      bodies.push(message.content.toString());
    }
    return bodies;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#conn.close().catch(() => {});
  }
}

/**
 * Stops the broker's application (every connection drops), runs `during`,
 * and always starts it again, waiting until it accepts logins.
 */
export async function withBrokerStopped(during: () => Promise<void>): Promise<void> {
  try {
    await withTimeout(rabbitmqctl("stop_app"), 60_000, "rabbitmqctl stop_app");
    await during();
  } finally {
    await withTimeout(rabbitmqctl("start_app"), 60_000, "rabbitmqctl start_app");
  }
  if (!(await awaitBroker())) throw new Error("The broker did not come back after start_app");
}

/** Stops the broker's application for `downMs`, then starts it again. */
export function restartBroker(downMs = 1000): Promise<void> {
  return withBrokerStopped(() => delay(downMs));
}

/** A fresh exchange name (`netkit.test.<uuid>`), the exchange deleted when disposed. */
export function testExchange(): { name: string } & AsyncDisposable {
  const name = `netkit.test.${crypto.randomUUID()}`;
  return {
    name,
    async [Symbol.asyncDispose]() {
      if (!(await awaitBroker())) return;
      const conn = await amqp.connect(BROKER_URL);
      try {
        const channel = await conn.createChannel();
        await channel.deleteExchange(name);
      } finally {
        await conn.close();
      }
    },
  };
}
