import assert from "node:assert/strict";
import {
  AmqpFatalError,
  AmqpLink,
  amqpTarget,
  backoffDelay,
  bindingOption,
  classifyAmqpError,
  DEFAULT_AMQP_URL,
  formatQueue,
  parseAmqpUrl,
  redactUrl,
  resolveAmqpUrl,
} from "../lib/amqp/amqp.ts";
import { Logger } from "../lib/cli/log.ts";
import { freePort } from "../bench/yardsticks.ts";
import { BROKER_URL, brokerMissing } from "./rabbitmq.ts";

const quiet = new Logger({ quiet: true });

Deno.test("bindingOption() binds with -e and -r, the key defaulting to the queue's name", () => {
  assert.equal(bindingOption({ queue: "Go" }), undefined);
  assert.deepEqual(bindingOption({ queue: "Go", exchange: "amq.topic" }), {
    exchange: "amq.topic",
    routingKey: "Go",
  });
  assert.deepEqual(
    bindingOption({ queue: "Go", exchange: "amq.topic", "routing-key": "a.#" }),
    { exchange: "amq.topic", routingKey: "a.#" },
  );
  assert.throws(
    () => bindingOption({ queue: "Go", "routing-key": "a" }),
    /--routing-key "a" needs --exchange/,
  );
});

Deno.test("redactUrl() hides the password and nothing else", () => {
  assert.equal(redactUrl("amqp://guest:guest@localhost:5672/"), "amqp://guest:***@localhost:5672/");
  assert.equal(redactUrl("amqps://u:p%40ss@h/vh"), "amqps://u:***@h/vh");
  assert.equal(redactUrl("amqp://localhost"), "amqp://localhost");
  assert.equal(redactUrl("not a url//me:secret@x"), "not a url//me:***@x");
});

Deno.test("resolveAmqpUrl() prefers --url, then AMQP_URL, then the book's default", () => {
  assert.equal(resolveAmqpUrl("amqp://a/", "amqp://b/"), "amqp://a/");
  assert.equal(resolveAmqpUrl(undefined, "amqp://b/"), "amqp://b/");
  assert.equal(resolveAmqpUrl(), DEFAULT_AMQP_URL);
});

Deno.test("parseAmqpUrl() rejects other schemes and missing hosts, quoting the URL redacted", () => {
  assert.throws(
    () => parseAmqpUrl("http://u:TopSecret@h/"),
    (e: Error) => e instanceof SyntaxError && /"http:\/\/u:\*\*\*@h\/"/.test(e.message),
  );
  assert.throws(() => parseAmqpUrl("amqp://"), /no host|not a URL/);
  assert.throws(() => parseAmqpUrl("::"), /not a URL/);
  assert.equal(parseAmqpUrl("amqp://h:5673/v").port, "5673");
});

Deno.test("amqpTarget() names host, port, vhost and user", () => {
  assert.deepEqual(amqpTarget("amqp://bob:x@h/"), { where: "h:5672", vhost: "/", user: "bob" });
  assert.deepEqual(amqpTarget("amqps://h:1/a%2Fb"), { where: "h:1", vhost: "a/b", user: "guest" });
});

Deno.test("classifyAmqpError() tells fatal failures from ones worth retrying", () => {
  const url = "amqp://guest:pw@127.0.0.1:5672/v";
  const login = classifyAmqpError(
    new Error(
      'Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"',
    ),
    url,
  );
  assert.equal(login.fatal, true);
  assert.match(login.message, /Login refused by 127\.0\.0\.1:5672 for user "guest"/);
  const vhost = classifyAmqpError(
    new Error("Expected ConnectionOpenOk; got <ConnectionClose channel:0>"),
    url,
  );
  assert.equal(vhost.fatal, true);
  assert.match(vhost.message, /virtual host "v"/);
  const declare = Object.assign(new Error("Operation failed: QueueDeclare; 406 (PRECONDITION)"), {
    code: 406,
  });
  assert.equal(classifyAmqpError(declare, url).fatal, true);
  const forced = Object.assign(new Error("Connection closed: 320 (CONNECTION-FORCED)"), {
    code: 320,
  });
  assert.equal(classifyAmqpError(forced, url).fatal, false);
  assert.equal(
    classifyAmqpError(new Error("connect ECONNREFUSED 127.0.0.1:5672"), url).fatal,
    false,
  );
  assert.equal(classifyAmqpError(new Error("Heartbeat timeout"), url).fatal, false);
});

Deno.test("backoffDelay() grows exponentially, stays under the cap, and spreads", () => {
  const options = { initialMs: 100, maxMs: 5000, factor: 2, jitter: 0.2 };
  for (let i = 0; i < 50; i++) {
    const first = backoffDelay(1, options);
    assert.ok(first >= 80 && first <= 120, `attempt 1: ${first}`);
    const fourth = backoffDelay(4, options);
    assert.ok(fourth >= 640 && fourth <= 960, `attempt 4: ${fourth}`);
    assert.ok(backoffDelay(40, options) <= 5000);
  }
  const spread = new Set(Array.from({ length: 20 }, () => backoffDelay(3, options)));
  assert.ok(spread.size > 1, "jitter spreads the delays");
  assert.equal(backoffDelay(3, { jitter: 0 }), 400);
});

Deno.test("formatQueue() prints a queue the way Go prints amqp.Queue", () => {
  assert.equal(formatQueue({ queue: "Go", messageCount: 1, consumerCount: 0 }), "{Go 1 0}");
});

Deno.test("AmqpLink.open() gives up on an unreachable broker after connectTimeoutMs", async () => {
  const port = freePort();
  const started = Date.now();
  await assert.rejects(
    AmqpLink.open(`amqp://u:Pw@127.0.0.1:${port}/`, {
      logger: quiet,
      connectTimeoutMs: 800,
      setup: () => Promise.resolve(),
    }),
    (e: Error) =>
      e instanceof AmqpFatalError && /Cannot reach RabbitMQ at amqp:\/\/u:\*\*\*@/.test(e.message),
  );
  assert.ok(Date.now() - started < 5000);
});

Deno.test("AmqpLink.open() stops trying when its signal aborts", async () => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 200);
  await assert.rejects(
    AmqpLink.open(`amqp://127.0.0.1:${freePort()}/`, {
      logger: quiet,
      connectTimeoutMs: 60_000,
      signal: controller.signal,
      setup: () => Promise.resolve(),
    }),
    /Interrupted while connecting/,
  );
});

Deno.test({
  name: "AmqpLink.open() connects, runs setup once, and fails fast on a wrong password",
  ignore: brokerMissing,
  async fn() {
    const connects: number[] = [];
    const link = await AmqpLink.open(BROKER_URL, {
      logger: quiet,
      setup: (_model, n) => {
        connects.push(n);
        return Promise.resolve();
      },
    });
    await link.close();
    assert.deepEqual(connects, [1]);
    await assert.rejects(
      AmqpLink.open("amqp://guest:wrong@127.0.0.1:5672/", {
        logger: quiet,
        setup: () => Promise.resolve(),
      }),
      (e: Error) => e instanceof AmqpFatalError && /wrong user name or password/.test(e.message),
    );
  },
});
