import assert from "node:assert/strict";
import { runScript, startScript } from "./helpers.ts";
import { Buffer } from "node:buffer";
import { Broker, brokerMissing, onBroker, onQueue, testQueue } from "./rabbitmq.ts";

const ignore = brokerMissing;

/** The numbers of `<prefix>-N` lines (as mq_read writes bodies in a pipe), in order. */
function received(lines: string[], prefix: string): number[] {
  const out: number[] = [];
  for (const line of lines) {
    const m = new RegExp(`^${prefix}-(\\d+)$`).exec(line);
    if (m) out.push(Number(m[1]));
  }
  return out;
}

Deno.test({
  name: "mq_send then mq_read --book: the book's output, round trip",
  ignore,
  async fn() {
    await using queue = testQueue();
    for (let i = 0; i < 2; i++) {
      const sent = await runScript("mq_send", onQueue(queue.name));
      assert.equal(sent.code, 0, sent.stderr);
    }
    const { code, stdout, stderr } = await runScript("mq_read", [
      ...onQueue(queue.name),
      "--book",
      "--count",
      "2",
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(
      stdout,
      [
        "RabbitMQ consumer",
        "Connected to the RabbitMQ server!",
        "Received: Writing to RabbitMQ!",
        "Received: Writing to RabbitMQ!",
      ].join("\n"),
    );
    await using broker = await Broker.connect();
    assert.equal(await broker.count(queue.name), 0, "both messages were acknowledged");
  },
});

Deno.test({
  name: "mq_read: 10,000 messages, none lost and none duplicated",
  ignore,
  async fn() {
    await using queue = testQueue();
    const total = 10_000;
    const sent = await runScript("mq_send", [
      ...onQueue(queue.name),
      "--count",
      String(total),
      "--message",
      "n",
    ]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /10000 messages published to Queue!/);
    const { code, stdout, stderr } = await runScript("mq_read", [
      ...onQueue(queue.name),
      "--count",
      String(total),
      "--prefetch",
      "500",
    ], { timeoutMs: 30_000 });
    assert.equal(code, 0, stderr);
    const numbers = received(stdout.split("\n"), "n");
    assert.equal(numbers.length, total);
    assert.equal(new Set(numbers).size, total, "no duplicates");
    assert.deepEqual(numbers, Array.from({ length: total }, (_, i) => i + 1), "in order");
    await using broker = await Broker.connect();
    assert.equal(await broker.count(queue.name), 0);
  },
});

Deno.test({
  name: "mq_read --count leaves the rest in the queue, unacked extras included",
  ignore,
  async fn() {
    await using queue = testQueue();
    await using broker = await Broker.connect();
    await broker.channel.assertQueue(queue.name, { durable: false });
    await broker.publish(queue.name, Array.from({ length: 50 }, (_, i) => `c-${i + 1}`));
    const { code, stdout } = await runScript("mq_read", [
      ...onQueue(queue.name),
      "--count",
      "7",
    ]);
    assert.equal(code, 0);
    assert.deepEqual(received(stdout.split("\n"), "c"), [1, 2, 3, 4, 5, 6, 7]);
    const rest = await broker.drain(queue.name);
    assert.equal(rest.length, 43);
    assert.deepEqual(rest.map((b) => Number(b.slice(2))).sort((a, b) => a - b)[0], 8);
  },
});

Deno.test({
  name: "mq_read killed mid-stream: unacked messages are delivered again, none lost",
  ignore,
  async fn() {
    await using queue = testQueue();
    const total = 5000;
    await using broker = await Broker.connect();
    await broker.channel.assertQueue(queue.name, { durable: false });
    await broker.publish(queue.name, Array.from({ length: total }, (_, i) => `k-${i + 1}`));
    const first = await startScript("mq_read", [
      ...onQueue(queue.name),
      "--prefetch",
      "200",
    ], { waitReady: false });
    await first.stdout.waitFor(/^k-/);
    first.kill("SIGSTOP"); // Frozen with a prefetch window delivered and not yet acked...
    first.kill("SIGKILL"); // ...then gone without a chance to ack anything.
    await first.exit();
    const before = received(first.stdout.lines, "k");
    assert.ok(before.length < total, "killed before the end");
    await broker.awaitNoConsumers(queue.name); // The broker has requeued what it had delivered.
    const { code, stdout } = await runScript("mq_read", [
      ...onQueue(queue.name),
      "--count",
      String(await broker.count(queue.name)),
    ], { timeoutMs: 30_000 });
    assert.equal(code, 0);
    const all = new Set([...before, ...received(stdout.split("\n"), "k")]);
    assert.equal(all.size, total, "every message printed by one of the two runs");
    assert.equal(await broker.count(queue.name), 0);
  },
});

Deno.test({
  name: "mq_read stops on SIGINT: in-flight messages go back to the queue",
  ignore,
  async fn() {
    await using queue = testQueue();
    await using broker = await Broker.connect();
    await broker.channel.assertQueue(queue.name, { durable: false });
    await using reader = await startScript("mq_read", [
      ...onQueue(queue.name),
    ], { waitReady: false });
    await reader.stderr.waitFor("Connected to the RabbitMQ server!");
    await broker.publish(queue.name, ["s-1", "s-2"]);
    await reader.stdout.waitFor(/^s-2$/);
    reader.kill("SIGINT");
    assert.equal((await reader.exit()).code, 0, reader.output);
    await broker.publish(queue.name, ["s-3"]);
    assert.deepEqual(await broker.drain(queue.name), ["s-3"]);
  },
});

Deno.test({
  name: "mq_read: a wrong password is exit 1 with no retry loop and no password shown",
  ignore,
  async fn() {
    const { code, stdout, stderr } = await runScript("mq_read", [
      "--url",
      "amqp://guest:N0tThePassword@127.0.0.1:5672/",
    ]);
    assert.equal(code, 1);
    assert.match(stderr, /Login refused .* wrong user name or password/);
    assert.doesNotMatch(stdout + stderr, /N0tThePassword/);
  },
});

Deno.test("mq_read rejects bad usage with exit 2", async () => {
  for (
    const [args, pattern] of [
      [["--prefetch", "0"], /Invalid --prefetch "0"/],
      [["--count", "x"], /Invalid --count "x"/],
      [["--url", "amqp://"], /Invalid AMQP URL "amqp:\/\/"/],
    ] as const
  ) {
    const { code, stderr } = await runScript("mq_read", [...args]);
    assert.equal(code, 2, `${args}: ${stderr}`);
    assert.match(stderr, pattern);
  }
});

Deno.test({
  name: "mq_read: a queue that exists with other settings is exit 1 with the broker's reason",
  ignore,
  async fn() {
    await using queue = testQueue();
    await using broker = await Broker.connect();
    await broker.channel.assertQueue(queue.name, { durable: true });
    const { code, stderr } = await runScript("mq_read", [
      ...onQueue(queue.name),
    ]);
    assert.equal(code, 1);
    assert.match(stderr, /PRECONDITION.FAILED - inequivalent arg 'durable'/);
  },
});

Deno.test({
  name: "mq_read -q Q -e amq.topic -r KEY binds the queue and reads what the exchange routes",
  ignore,
  async fn() {
    await using queue = testQueue();
    await using broker = await Broker.connect();
    const key = `${queue.name}.#`;
    await using reader = await startScript(
      "mq_read",
      onBroker(
        "-q",
        queue.name,
        "-e",
        "amq.topic",
        "-r",
        key,
        "-c",
        "1",
      ),
      { waitReady: false },
    );
    await reader.stderr.waitFor("Connected to the RabbitMQ server!");
    broker.channel.publish("amq.topic", `${queue.name}.a.b`, Buffer.from("routed"));
    await broker.channel.waitForConfirms();
    assert.equal((await reader.exit()).code, 0, reader.output);
    assert.deepEqual(reader.stdout.lines, ["routed"], "in a pipe: the body alone");
    const usage = await runScript("mq_read", ["-r", "key-without-exchange"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--routing-key "key-without-exchange" needs --exchange/);
  },
});
