import assert from "node:assert/strict";
import { deadline, delay, settledWithin } from "../lib/io/deadline.ts";

const never = () => new Promise<never>(() => {});

Deno.test("deadline() resolves with the promise's value when it comes in time", async () => {
  assert.equal(await deadline(Promise.resolve(7), 1_000, "late"), 7);
});

Deno.test("deadline() rejects with TimedOut and the message when time runs out", async () => {
  await assert.rejects(deadline(never(), 20, "No reply within 20 ms"), (error: unknown) => {
    return error instanceof Deno.errors.TimedOut && error.message === "No reply within 20 ms";
  });
});

Deno.test("deadline() passes the promise's own rejection through", async () => {
  await assert.rejects(
    deadline(Promise.reject(new SyntaxError("bad")), 1_000, "late"),
    SyntaxError,
  );
});

Deno.test("deadline() with 0 ms waits for the promise, however long", async () => {
  assert.equal(await deadline(delay(30).then(() => "done"), 0, "late"), "done");
});

Deno.test("settledWithin() says whether the promise settled, rejections included", async () => {
  assert.equal(await settledWithin(Promise.resolve(), 1_000), true);
  assert.equal(await settledWithin(Promise.reject(new Error("gone")), 1_000), true);
  assert.equal(await settledWithin(never(), 20), false);
});
