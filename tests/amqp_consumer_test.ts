import assert from "node:assert/strict";
import { QueueConsumer } from "../lib/amqp/amqp_consumer.ts";
import { Logger } from "../lib/cli/log.ts";
import { delay } from "./helpers.ts";
import { Broker, BROKER_URL, brokerMissing, testQueue } from "./rabbitmq.ts";

const quiet = new Logger({ quiet: true });
const ignore = brokerMissing;

Deno.test({
  name: "QueueConsumer hands batches in order and acks only what the handler settled",
  ignore,
  async fn() {
    await using queue = testQueue();
    await using broker = await Broker.connect();
    await broker.channel.assertQueue(queue.name, { durable: false });
    await broker.publish(queue.name, Array.from({ length: 30 }, (_, i) => `b-${i}`));
    const seen: string[] = [];
    const consumer = await QueueConsumer.open(BROKER_URL, {
      queue: queue.name,
      logger: quiet,
      prefetch: 10,
      handle: (batch, settle) => {
        for (const m of batch) seen.push(m.content.toString());
        const stop = seen.length >= 20;
        // Settle up to the 20th message only; the rest must go back to the queue.
        const last = stop ? batch[batch.length - 1 - (seen.length - 20)] : batch[batch.length - 1];
        if (last) settle.ack(last);
        return Promise.resolve(!stop);
      },
    });
    await consumer.finished;
    await consumer.stop();
    assert.deepEqual(seen.slice(0, 20), Array.from({ length: 20 }, (_, i) => `b-${i}`));
    assert.equal(await broker.count(queue.name), 10);
  },
});

Deno.test({
  name: "QueueConsumer.pause() returns delivered messages to the queue; resume() gets them again",
  ignore,
  async fn() {
    await using queue = testQueue();
    await using broker = await Broker.connect();
    await broker.channel.assertQueue(queue.name, { durable: false });
    await broker.publish(queue.name, ["p-1", "p-2"]);
    const seen: Array<[string, boolean]> = [];
    let paused = false;
    const consumer: QueueConsumer = await QueueConsumer.open(BROKER_URL, {
      queue: queue.name,
      logger: quiet,
      start: false, // The handler below needs `consumer` assigned.
      handle: async (batch, settle) => {
        for (const m of batch) seen.push([m.content.toString(), m.fields.redelivered]);
        if (!paused) {
          paused = true;
          await consumer.pause(); // As the bridge does when its TCP server goes away.
          return;
        }
        settle.ack(batch[batch.length - 1]);
      },
    });
    await consumer.resume();
    while (!paused) await delay(20);
    await delay(100);
    assert.equal(await broker.count(queue.name), 2, "both back in the queue");
    await consumer.resume();
    while (seen.filter(([, again]) => again).length < 2) await delay(20);
    await consumer.stop();
    assert.deepEqual(seen.filter(([, again]) => again).map(([b]) => b), ["p-1", "p-2"]);
    assert.equal(await broker.count(queue.name), 0);
  },
});
