import assert from "node:assert/strict";
import { ChatHub } from "../lib/chat/hub.ts";
import { WorkerBus, workerChannelName } from "../lib/chat/worker_bus.ts";
import { LineSink, waitUntil } from "./line_sink.ts";

Deno.test("WorkerBus: hubs on one channel form one room; another port's room stays apart", async () => {
  const hubs = [1, 2, 3].map(() => new ChatHub({ presenceDelayMs: 0, rate: 0 }));
  using a = new WorkerBus(hubs[0], workerChannelName(1001));
  using _b = new WorkerBus(hubs[1], workerChannelName(1001));
  using _other = new WorkerBus(hubs[2], workerChannelName(1002));
  const alice = new LineSink();
  const bob = new LineSink();
  const am = hubs[0].join("alice", alice);
  hubs[1].join("bob", bob);
  hubs[2].join("zed", new LineSink());
  await alice.waitFor("* bob joined");
  for (let i = 1; i <= 20; i++) hubs[0].broadcast(am, `m${i}`);
  await bob.waitFor("alice: m20");
  assert.deepEqual(
    bob.lines.filter((l) => l.startsWith("alice:")),
    Array.from({ length: 20 }, (_, i) => `alice: m${i + 1}`),
  );
  assert.deepEqual(hubs[0].names(), ["alice", "bob"]);
  assert.deepEqual(hubs[2].names(), ["zed"]);
  hubs[1].close();
  _b.close();
  await alice.waitFor("* bob left (server shutdown)");
  await waitUntil(() => a.link.peers().size === 0, "bob's worker to be gone");
  for (const hub of hubs) hub.close();
});
