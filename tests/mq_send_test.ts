import assert from "node:assert/strict";
import { delay, runScript, startScript } from "./helpers.ts";
import { Broker, brokerMissing, onBroker, onQueue, restartBroker, testQueue } from "./rabbitmq.ts";
import { freePort } from "../bench/yardsticks.ts";

const ignore = brokerMissing;

Deno.test({
  name: "mq_send prints the book's lines, and the queue count grows run by run",
  ignore,
  async fn() {
    await using queue = testQueue();
    const first = await runScript("mq_send", onQueue(queue.name));
    assert.equal(first.code, 0, first.stderr);
    assert.equal(
      first.stdout,
      `RabbitMQ producer\nQueue: {${queue.name} 0 0}\nMessage published to Queue!`,
    );
    const second = await runScript("mq_send", onQueue(queue.name));
    assert.match(second.stdout, new RegExp(`^Queue: \\{${queue.name} 1 0\\}$`, "m"));
    await using broker = await Broker.connect();
    assert.deepEqual(await broker.drain(queue.name), [
      "Writing to RabbitMQ!",
      "Writing to RabbitMQ!",
    ]);
  },
});

Deno.test({
  name: "mq_send --lines publishes each stdin line and confirms each one",
  ignore,
  async fn() {
    await using queue = testQueue();
    const { code, stdout, stderr } = await runScript(
      "mq_send",
      [...onQueue(queue.name), "--lines"],
      { stdin: "one\ntwo words\r\n\nthree" },
    );
    assert.equal(code, 0, stderr);
    assert.equal(stdout.split("\n").filter((l) => l === "Message published to Queue!").length, 4);
    await using broker = await Broker.connect();
    assert.deepEqual(await broker.drain(queue.name), ["one", "two words", "", "three"]);
  },
});

Deno.test({
  name: "mq_send --lines rejects an over-long line with exit 1 after publishing the ones before",
  ignore,
  async fn() {
    await using queue = testQueue();
    const { code, stderr } = await runScript(
      "mq_send",
      [...onQueue(queue.name), "--lines", "--max-line", "10"],
      { stdin: "short\n" + "x".repeat(50) + "\nnever\n" },
    );
    assert.equal(code, 1);
    assert.match(stderr, /Line 2 of stdin: Line exceeds the limit of 10 bytes; 1 published/);
    await using broker = await Broker.connect();
    assert.deepEqual(await broker.drain(queue.name), ["short"]);
  },
});

Deno.test({
  name: "mq_send: a wrong password is exit 1 at once, and the password is never printed",
  ignore,
  async fn() {
    await using queue = testQueue();
    const started = Date.now();
    const { code, stdout, stderr } = await runScript("mq_send", [
      "--url",
      "amqp://guest:Sup3rSecretPw@127.0.0.1:5672/",
      "--queue",
      queue.name,
    ]);
    assert.equal(code, 1);
    assert.match(stderr, /Login refused by 127\.0\.0\.1:5672 for user "guest"/);
    assert.ok(Date.now() - started < 10_000, "did not retry a wrong password");
    assert.doesNotMatch(stdout + stderr, /Sup3rSecretPw/);
  },
});

Deno.test({
  name: "mq_send: an unknown vhost is exit 1 with the vhost named",
  ignore,
  async fn() {
    const { code, stderr } = await runScript("mq_send", [
      "--url",
      "amqp://guest:guest@127.0.0.1:5672/no-such-vhost",
    ]);
    assert.equal(code, 1);
    assert.match(stderr, /Cannot open virtual host "no-such-vhost" on 127\.0\.0\.1:5672/);
  },
});

Deno.test("mq_send: a broker that is not there is retried for --connect-timeout, then exit 1", async () => {
  const port = freePort();
  const started = Date.now();
  const { code, stderr } = await runScript("mq_send", [
    "--url",
    `amqp://guest:Hidden123@127.0.0.1:${port}/`,
    "--connect-timeout",
    "3s",
  ]);
  assert.equal(code, 1);
  assert.match(stderr, /retrying in \d+ ms/);
  // It tried for the whole timeout and says so (it used to give up "after 1.5 s").
  const secs = Number(/after (\d+\.\d) s/.exec(stderr)?.[1]);
  assert.ok(secs >= 3 && Date.now() - started >= 3_000, stderr);
  assert.match(
    stderr,
    new RegExp(`Cannot reach RabbitMQ at amqp://guest:\\*\\*\\*@127\\.0\\.0\\.1:${port}/`),
  );
  assert.doesNotMatch(stderr, /Hidden123/);
  assert.ok(Date.now() - started < 10_000);
});

Deno.test("mq_send rejects bad usage with exit 2, quoting the value and hiding the password", async () => {
  for (
    const [args, pattern] of [
      [["--url", "http://u:Pw99@host/"], /Invalid AMQP URL "http:\/\/u:\*\*\*@host\/"/],
      [["--count", "0"], /Invalid --count "0"/],
      [["--count", "5", "--lines"], /Use either --count or --lines/],
      [["--connect-timeout", "soon"], /Invalid --connect-timeout "soon"/],
      [["extra"], /Unexpected argument "extra"/],
    ] as const
  ) {
    const { code, stderr } = await runScript("mq_send", [...args]);
    assert.equal(code, 2, `${args}: ${stderr}`);
    assert.match(stderr, pattern);
    assert.doesNotMatch(stderr, /Pw99/);
  }
});

Deno.test("mq_send --help prints usage and exits 0", async () => {
  const { code, stdout } = await runScript("mq_send", ["--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /^Usage: mq_send/);
  assert.match(stdout, /--connect-timeout/);
});

Deno.test({
  name: "mq_send and mq_read survive a broker restart: every confirmed message is consumed",
  ignore,
  async fn() {
    await using queue = testQueue();
    const total = 20_000;
    await using reader = await startScript(
      "mq_read",
      [...onQueue(queue.name), "--durable"],
      { waitReady: false },
    );
    await reader.stderr.waitFor("Connected to the RabbitMQ server!");
    await using sender = await startScript("mq_send", [
      ...onQueue(queue.name),
      "--durable",
      "--persistent",
      "--count",
      String(total),
      "--message",
      "m",
      "--max-in-flight",
      "20", // slow enough to be mid-run when the broker stops
    ], { waitReady: false });
    await reader.stdout.waitFor(/^m-/, 20_000);
    await restartBroker(1000); // Always starts the broker again, even if stopping failed.
    const status = await sender.exit(60_000);
    assert.equal(status.code, 0, sender.output);
    assert.match(sender.stdout.text, new RegExp(`${total} messages published to Queue!`));
    assert.match(sender.stderr.text, /connection lost/);
    // Every number, at least once (a republish or a redelivery may repeat some).
    const seen = new Set<number>();
    const deadline = Date.now() + 30_000;
    while (seen.size < total && Date.now() < deadline) {
      for (const line of reader.stdout.lines) {
        const m = /^m-(\d+)$/.exec(line);
        if (m) seen.add(Number(m[1]));
      }
      await delay(100);
    }
    assert.equal(seen.size, total, `consumed ${seen.size} of ${total}\n${reader.stderr.text}`);
    assert.match(reader.stderr.text, /reconnected/);
    reader.kill("SIGTERM");
    assert.equal((await reader.exit()).code, 0, reader.output);
  },
});

Deno.test({
  name: "mq_send -e amq.topic -r KEY reaches a queue bound to the key, with -H and -C",
  ignore,
  async fn() {
    await using queue = testQueue();
    const key = `${queue.name}.created`;
    await using broker = await Broker.connect();
    await broker.channel.assertQueue(queue.name);
    await broker.channel.bindQueue(queue.name, "amq.topic", `${queue.name}.*`);
    const sent = await runScript(
      "mq_send",
      onBroker(
        "-e",
        "amq.topic",
        "-r",
        key,
        "-H",
        "x-order: 7",
        "-C",
        "application/json",
        "-p",
        "-m",
        '{"id":7}',
      ),
    );
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(sent.stdout, "RabbitMQ producer\nMessage published to Queue!");
    const message = await broker.channel.get(queue.name, { noAck: true });
    assert.ok(message, "the message reached the bound queue");
    assert.equal(message.content.toString(), '{"id":7}');
    assert.equal(message.fields.exchange, "amq.topic");
    assert.equal(message.fields.routingKey, key);
    assert.equal(message.properties.contentType, "application/json");
    assert.equal(message.properties.deliveryMode, 2);
    assert.equal(message.properties.headers?.["x-order"], "7");

    // A key no binding matches: the message comes back and that is exit 1, not a silent loss.
    const lost = await runScript(
      "mq_send",
      onBroker(
        "-e",
        "amq.topic",
        "-r",
        "nobody",
      ),
    );
    assert.equal(lost.code, 1);
    assert.match(
      lost.stderr,
      /Exchange "amq\.topic" routed a message with key "nobody" to no queue/,
    );
  },
});

Deno.test({
  name: "mq_send -q names the queue (amqp-tools), -c counts, --quiet keeps its long name",
  ignore,
  async fn() {
    await using queue = testQueue();
    const { code, stdout, stderr } = await runScript(
      "mq_send",
      onBroker(
        "-q",
        queue.name,
        "-c",
        "3",
        "-m",
        "n",
        "--quiet",
      ),
    );
    assert.equal(code, 0, stderr);
    assert.match(stdout, /3 messages published to Queue!/);
    await using broker = await Broker.connect();
    assert.deepEqual(await broker.drain(queue.name), ["n-1", "n-2", "n-3"]);
  },
});

Deno.test("mq_send gives up on an unreachable broker after the default --connect-timeout", async () => {
  const port = freePort();
  const { code, stderr } = await runScript("mq_send", ["-u", `amqp://127.0.0.1:${port}/`]);
  assert.equal(code, 1);
  const match = /Cannot reach RabbitMQ at .* after (\d+\.\d) s/.exec(stderr);
  assert.ok(match, stderr);
  assert.ok(Number(match[1]) <= 5, `retried ${match[1]} s, past the 5 s default`);
});
