import assert from "node:assert/strict";
import { LineReader, writeAll } from "../lib/io/lines.ts";
import { freePort } from "../bench/yardsticks.ts";
import { runScript, startScript, withTimeout } from "./helpers.ts";
import { Broker, brokerMissing, deleteQueues, onQueue, testQueue } from "./rabbitmq.ts";

const ignore = brokerMissing;

/** A TCP server for the bridge to talk to: records lines, may reply, may hang up. */
class LineSink implements AsyncDisposable {
  readonly lines: string[] = [];
  readonly listener: Deno.TcpListener;
  #conns = new Set<Deno.TcpConn>();
  #serving: Promise<void>;
  #onLine: (line: string, conn: Deno.TcpConn, n: number) => Promise<void> | void;

  constructor(
    port: number,
    onLine: (line: string, conn: Deno.TcpConn, n: number) => Promise<void> | void = () => {},
  ) {
    this.listener = Deno.listen({ hostname: "127.0.0.1", port });
    this.#onLine = onLine;
    this.#serving = this.#accept();
  }

  async #accept(): Promise<void> {
    const handlers: Promise<void>[] = [];
    try {
      for await (const conn of this.listener) handlers.push(this.#handle(conn));
    } catch {
      // Listener closed.
    }
    await Promise.all(handlers);
  }

  async #handle(conn: Deno.TcpConn): Promise<void> {
    this.#conns.add(conn);
    try {
      for await (const line of new LineReader(conn)) {
        this.lines.push(line);
        await this.#onLine(line, conn, this.lines.length);
      }
    } catch {
      // Closed by the test.
    } finally {
      this.#conns.delete(conn);
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  }

  /** Waits until `n` lines arrived. */
  async waitForLines(n: number, timeoutMs = 15_000): Promise<string[]> {
    await withTimeout(
      (async () => {
        while (this.lines.length < n) await new Promise((r) => setTimeout(r, 20));
      })(),
      timeoutMs,
      `${n} lines (got ${JSON.stringify(this.lines)})`,
    );
    return this.lines;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.listener.close();
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    await this.#serving;
  }
}

Deno.test({
  name: "mq_to_tcp holds messages while the TCP server is down and forwards them once it is up",
  ignore,
  async fn() {
    await using queue = testQueue();
    const port = freePort();
    await using bridge = await startScript("mq_to_tcp", [
      ...onQueue(queue.name),
      "--tcp",
      `127.0.0.1:${port}`,
    ], { waitReady: false });
    await bridge.stdout.waitFor("Connected to the RabbitMQ server!");
    await using broker = await Broker.connect();
    await broker.publish(queue.name, ["first", "second", "third"]);
    await bridge.stderr.waitFor(/TCP tcp:\/\/127\.0\.0\.1:\d+: .*retrying in \d+ ms/);
    assert.equal(await broker.count(queue.name), 3, "nothing taken while the server is down");
    await using sink = new LineSink(port);
    assert.deepEqual(await sink.waitForLines(3), ["first", "second", "third"]);
    await bridge.stdout.waitFor("Forwarded: third");
    bridge.kill("SIGTERM");
    assert.equal((await bridge.exit()).code, 0, bridge.output);
    assert.equal(await broker.count(queue.name), 0, "all acknowledged");
  },
});

Deno.test({
  name: "mq_to_tcp --await-reply: a server that hangs up before replying gets the message again",
  ignore,
  async fn() {
    await using queue = testQueue();
    const port = freePort();
    let hungUp = false;
    await using sink = new LineSink(port, async (line, conn) => {
      if (line === "m-2" && !hungUp) {
        hungUp = true;
        conn.close(); // Gone without an answer: m-2 must come back.
        return;
      }
      await writeAll(conn, new TextEncoder().encode(`ok ${line}\n`));
    });
    await using broker = await Broker.connect();
    await broker.channel.assertQueue(queue.name, { durable: false });
    await broker.publish(queue.name, ["m-1", "m-2", "m-3"]);
    await using bridge = await startScript("mq_to_tcp", [
      ...onQueue(queue.name),
      "--tcp",
      `127.0.0.1:${port}`,
      "--await-reply",
      "--prefetch",
      "1",
    ], { waitReady: false });
    await bridge.stdout.waitFor("Forwarded: m-3 -> ok m-3", 20_000);
    assert.deepEqual(sink.lines, ["m-1", "m-2", "m-2", "m-3"]);
    assert.match(bridge.stderr.text, /unforwarded messages go back to the queue/);
    assert.equal(await broker.count(queue.name), 0);
    bridge.kill("SIGINT");
    assert.equal((await bridge.exit()).code, 0, bridge.output);
  },
});

Deno.test({
  name: "mq_to_tcp rejects poison messages without requeue: they are dead-lettered, others flow",
  ignore,
  async fn() {
    await using queue = testQueue();
    const dlx = `${queue.name}.dlx`;
    const dead = `${queue.name}.dead`;
    const port = freePort();
    await using sink = new LineSink(port);
    await using broker = await Broker.connect();
    try {
      await broker.channel.assertExchange(dlx, "fanout", { durable: false });
      await broker.channel.assertQueue(dead, { durable: false });
      await broker.channel.bindQueue(dead, dlx, "");
      await broker.channel.assertQueue(queue.name, {
        durable: false,
        arguments: { "x-dead-letter-exchange": dlx },
      });
      await broker.publish(queue.name, ["good-1", "two\nlines", "x".repeat(101), "good-2"]);
      await using bridge = await startScript("mq_to_tcp", [
        ...onQueue(queue.name),
        "--tcp",
        `127.0.0.1:${port}`,
        "--dead-letter-exchange",
        dlx,
        "--max-line",
        "100",
      ], { waitReady: false });
      assert.deepEqual(await sink.waitForLines(2), ["good-1", "good-2"]);
      await bridge.stdout.waitFor("Forwarded: good-2");
      assert.equal(bridge.stderr.count(/Rejected a message .*not requeued/), 2, bridge.output);
      assert.match(bridge.stderr.text, /it contains a line break/);
      assert.match(bridge.stderr.text, /101 bytes, over the limit of 100/);
      bridge.kill("SIGTERM");
      assert.equal((await bridge.exit()).code, 0);
      assert.deepEqual((await broker.drain(dead)).sort(), ["two\nlines", "x".repeat(101)]);
      assert.equal(await broker.count(queue.name), 0, "never redelivered");
    } finally {
      await deleteQueues(dead, dlx);
    }
  },
});

Deno.test({
  name: "mq_to_tcp: a wrong password is exit 1 at once, password not shown",
  ignore,
  async fn() {
    const { code, stdout, stderr } = await runScript("mq_to_tcp", [
      "--url",
      "amqp://guest:Bridg3Secret@127.0.0.1:5672/",
      "--tcp",
      "127.0.0.1:9",
    ]);
    assert.equal(code, 1);
    assert.match(stderr, /Login refused/);
    assert.doesNotMatch(stdout + stderr, /Bridg3Secret/);
  },
});

Deno.test("mq_to_tcp rejects bad usage with exit 2", async () => {
  for (
    const [args, pattern] of [
      [[], /Missing --tcp HOST:PORT/],
      [["--tcp", "nohost"], /nohost/],
      [["--tcp", "127.0.0.1:99999"], /port must be 0-65535/],
      [["--tcp", "127.0.0.1:1", "--max-line", "0"], /Invalid --max-line "0"/],
    ] as const
  ) {
    const { code, stderr } = await runScript("mq_to_tcp", [...args]);
    assert.equal(code, 2, `${args}: ${stderr}`);
    assert.match(stderr, pattern);
  }
});
