import assert from "node:assert/strict";
import {
  formatAddr,
  joinHostPort,
  parseAddress,
  parseHostPort,
  parsePort,
} from "../lib/net/addr.ts";

Deno.test("parseAddress() reads a bare port, :port, host:port, [v6]:port and unix:path", () => {
  assert.deepEqual(parseAddress("1234"), { transport: "tcp", hostname: "0.0.0.0", port: 1234 });
  assert.deepEqual(parseAddress(":80"), { transport: "tcp", hostname: "0.0.0.0", port: 80 });
  assert.deepEqual(parseAddress("example.com:8080"), {
    transport: "tcp",
    hostname: "example.com",
    port: 8080,
  });
  assert.deepEqual(parseAddress("[::1]:1234"), { transport: "tcp", hostname: "::1", port: 1234 });
  assert.deepEqual(parseAddress("unix:/tmp/echo.sock"), {
    transport: "unix",
    path: "/tmp/echo.sock",
  });
  assert.deepEqual(parseAddress("0", { defaultHost: "127.0.0.1" }), {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 0,
  });
});

Deno.test("parseAddress() quotes the bad value in its errors", () => {
  const cases: Array<[string, RegExp]> = [
    ["x:99999", /^Cannot parse address "x:99999": port must be 0-65535$/],
    ["host:", /"host:": the port is missing/],
    ["host:abc", /"host:abc": port "abc" is not a number/],
    ["::1:80", /"::1:80": write IPv6 addresses in brackets/],
    ["[::1]80", /"\[::1\]80": expected ':PORT' after '\]'/],
    ["[::1:80", /missing '\]'/],
    ["localhost", /"localhost": expected HOST:PORT or PORT/],
    ["unix:", /"unix:": the socket path is empty/],
    ["-1", /"-1"/],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(() => parseAddress(text), (e: unknown) => {
      assert.ok(e instanceof RangeError, `${text}: ${e}`);
      assert.match(e.message, pattern);
      return true;
    });
  }
});

Deno.test("parseHostPort() refuses unix sockets and, for clients, a missing host", () => {
  assert.throws(() => parseHostPort("unix:/x"), /not supported/);
  assert.throws(() => parseHostPort(":80", { requireHost: true }), /the host is missing/);
  assert.deepEqual(parseHostPort("127.0.0.1:9"), {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 9,
  });
});

Deno.test("parsePort() accepts 0-65535 only", () => {
  assert.equal(parsePort("0"), 0);
  assert.equal(parsePort("65535"), 65535);
  assert.throws(() => parsePort("65536"), /Cannot parse port "65536": must be 0-65535/);
  assert.throws(() => parsePort("12a"), /Cannot parse port "12a"/);
  assert.throws(() => parsePort(""), /Cannot parse port ""/);
});

Deno.test("formatAddr() and joinHostPort() bracket IPv6 hosts", () => {
  assert.equal(joinHostPort("::1", 80), "[::1]:80");
  assert.equal(
    formatAddr({ transport: "tcp", hostname: "127.0.0.1", port: 5 }),
    "tcp://127.0.0.1:5",
  );
  assert.equal(formatAddr({ transport: "udp", hostname: "::", port: 5 }), "udp://[::]:5");
  assert.equal(formatAddr({ transport: "unix", path: "/tmp/s" }), "unix:/tmp/s");
});
