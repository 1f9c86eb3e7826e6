import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp from "amqplib";
import { encodePublish, PublishBatch, publishSize } from "../lib/amqp/amqp_publish.ts";
import { BROKER_URL, brokerMissing, testQueue } from "./rabbitmq.ts";

const encoder = new TextEncoder();

Deno.test("encodePublish() lays out method, header and body frames as AMQP 0-9-1 says", () => {
  const key = encoder.encode("q");
  const type = encoder.encode("t");
  const body = encoder.encode("hi");
  const size = publishSize(key, type, true, body.byteLength, 4096);
  const out = new Uint8Array(size);
  const end = encodePublish(
    out,
    0,
    1,
    key,
    type,
    { persistent: true, mandatory: true },
    body,
    4096,
  );
  assert.equal(end, size);
  // deno-fmt-ignore
  assert.deepEqual([...out], [
    1, 0, 1, 0, 0, 0, 10, 0, 60, 0, 40, 0, 0, 0, 1, 0x71, 1, 0xce, // basic.publish "" "q" mandatory
    2, 0, 1, 0, 0, 0, 17, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x90, 0, 1, 0x74, 2, 0xce, // header
    3, 0, 1, 0, 0, 0, 2, 0x68, 0x69, 0xce, // body
  ]);
});

Deno.test("encodePublish() splits a body larger than frameMax and sends none for an empty one", () => {
  const key = encoder.encode("q");
  const type = encoder.encode("t");
  const flags = { persistent: false, mandatory: false };
  const big = new Uint8Array(10_000).fill(7);
  const out = new Uint8Array(publishSize(key, type, false, big.byteLength, 4096));
  assert.equal(encodePublish(out, 0, 1, key, type, flags, big, 4096), out.byteLength);
  const empty = new Uint8Array(publishSize(key, type, false, 0, 4096));
  assert.equal(encodePublish(empty, 0, 1, key, type, flags, new Uint8Array(0), 4096), empty.length);
  assert.equal(empty.length, 18 + 24, "method and header frames only");
});

Deno.test({
  name: "PublishBatch delivers every message intact, confirmed, with its properties",
  ignore: brokerMissing,
  async fn() {
    await using queue = testQueue();
    const conn = await amqp.connect(BROKER_URL);
    try {
      const channel = await conn.createConfirmChannel();
      await channel.assertQueue(queue.name, { durable: false });
      const batch = PublishBatch.for(channel, queue.name, {
        contentType: "text/plain",
        persistent: true,
        mandatory: true,
      }, true);
      assert.ok(batch, "amqplib internals as expected");
      const bodies = ["plain", "", "ünïcode ✓", "x".repeat(300_000), ...Array(500).fill("many")];
      const confirmed: Array<Error | null> = [];
      for (const body of bodies) batch.add(Buffer.from(body), (e) => confirmed.push(e));
      batch.flush();
      await channel.waitForConfirms();
      assert.equal(confirmed.length, bodies.length);
      assert.ok(confirmed.every((e) => e === null));
      // amqplib's own publishes on the same channel still line up with their confirms.
      await new Promise<void>((resolve, reject) =>
        channel.sendToQueue(queue.name, Buffer.from("after"), {}, (e) => e ? reject(e) : resolve())
      );
      for (const body of [...bodies, "after"]) {
        const message = await channel.get(queue.name, { noAck: true });
        assert.ok(message);
        assert.equal(message.content.toString(), body);
        if (body !== "after") {
          assert.equal(message.properties.contentType, "text/plain");
          assert.equal(message.properties.deliveryMode, 2);
        }
      }
      assert.equal(await channel.get(queue.name), false);
      await channel.close();
    } finally {
      await conn.close();
    }
  },
});
