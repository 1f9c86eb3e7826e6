/**
 * The RabbitMQ broker for tests: whether it is there (waiting for it when
 * another test is restarting it), a fresh exchange name per test that is
 * deleted afterwards, and restarting the broker itself.
 *
 * @module
 */
import amqp from "amqplib";
import { delay, hasCommand, withTimeout } from "./helpers.ts";

/** The broker every test uses. */
export const BROKER_URL = "amqp://guest:guest@127.0.0.1:5672";

async function reachable(): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: 5672 });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** Runs `rabbitmqctl ARGS`, failing with its output when it fails. */
export async function rabbitmqctl(...args: string[]): Promise<void> {
  const out = await new Deno.Command("rabbitmqctl", { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`rabbitmqctl ${args.join(" ")} failed: ${text}`);
  }
}

/** Waits until the broker accepts connections (another test may be restarting it). */
export async function awaitBroker(timeoutMs = 60_000): Promise<boolean> {
  if (await reachable()) return true;
  if (!hasCommand("rabbitmqctl")) return false;
  const deadline = Date.now() + timeoutMs;
  await withTimeout(rabbitmqctl("await_startup"), timeoutMs, "the broker to start").catch(() => {});
  while (Date.now() < deadline) {
    if (await reachable()) return true;
    await delay(250);
  }
  return false;
}

/**
 * Whether the broker tests should be ignored: only outside CI, where a
 * missing broker is reported; in CI they run and fail.
 */
export async function brokerMissing(): Promise<boolean> {
  if (await awaitBroker(20_000)) return false;
  if (Deno.env.get("CI")) return false;
  console.error("(ignoring tests that need RabbitMQ: nothing listens on 127.0.0.1:5672)");
  return true;
}

/** A fresh exchange name, deleted from the broker when disposed. */
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

/**
 * Stops the broker's application (every connection drops), runs `during`,
 * and always starts it again, waiting until it accepts connections.
 */
export async function withBrokerStopped(during: () => Promise<void>): Promise<void> {
  await rabbitmqctl("stop_app");
  try {
    await during();
  } finally {
    await rabbitmqctl("start_app");
    await awaitBroker();
  }
}
