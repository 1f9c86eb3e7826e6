import assert from "node:assert/strict";
import { dial, familyOption, ipVersion, resolveFamily } from "../lib/net/dial.ts";
import { UsageError } from "../lib/cli/cli.ts";

Deno.test("ipVersion() tells IPv4 and IPv6 literals from host names", () => {
  assert.equal(ipVersion("127.0.0.1"), 4);
  assert.equal(ipVersion("::1"), 6);
  assert.equal(ipVersion("localhost"), 0);
  assert.equal(ipVersion("1.2.3"), 0);
});

Deno.test("resolveFamily() keeps matching literals, refuses the other family, resolves names", async () => {
  assert.equal(await resolveFamily("127.0.0.1", 4), "127.0.0.1");
  await assert.rejects(resolveFamily("127.0.0.1", 6), /"127.0.0.1" is not an IPv6 address/);
  assert.equal(await resolveFamily("localhost", 4), "127.0.0.1");
  await assert.rejects(
    resolveFamily("no-such-host.invalid", 4),
    /Cannot resolve "no-such-host.invalid"/,
  );
});

Deno.test("dial() connects, and names the address when it cannot", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const conn = await dial({ transport: "tcp", hostname: "localhost", port }, {
    family: 4,
    timeoutMs: 5000,
  });
  (await listener.accept()).close();
  conn.close();
  listener.close();
  await assert.rejects(
    dial({ transport: "tcp", hostname: "127.0.0.1", port }),
    new RegExp(`Cannot connect to 127.0.0.1:${port}: Connection refused`),
  );
});

Deno.test("familyOption() reads -4 and -6 and refuses both at once", () => {
  assert.equal(familyOption({}), undefined);
  assert.equal(familyOption({ ipv4: true }), 4);
  assert.equal(familyOption({ ipv6: true }), 6);
  assert.throws(() => familyOption({ ipv4: true, ipv6: true }), UsageError);
});
