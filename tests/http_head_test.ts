import assert from "node:assert/strict";
import { headRequest, parseTarget } from "../scripts/http_head.ts";
import { writeAll } from "../lib/io/lines.ts";
import { delay, ROOT, runScript, taskArgs } from "./helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Runs http_head as its task does and returns its exit code and exact stdout bytes. */
async function runRaw(args: string[]): Promise<{ code: number; stdout: string }> {
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: [...taskArgs("http_head"), ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, stdout: decoder.decode(stdout) };
}

/** A one-request raw server: records the request, sends `response`, closes. */
function rawServer(response: string, hold = 0) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const request = (async () => {
    const conn = await listener.accept();
    try {
      const buf = new Uint8Array(4096);
      let text = "";
      while (!text.includes("\r\n\r\n")) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += decoder.decode(buf.subarray(0, n));
      }
      await writeAll(conn, encoder.encode(response));
      await delay(hold);
      return text;
    } finally {
      conn.close();
      listener.close();
    }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, request };
}

Deno.test("http_head sends the seed's HEAD / HTTP/1.0 and prints the head as received", async () => {
  const head = "HTTP/1.0 200 OK\r\nServer: raw\r\nContent-Length: 5\r\n\r\n";
  const server = rawServer(head + "body!");
  const { code, stdout } = await runRaw([`127.0.0.1:${server.port}`]);
  assert.equal(await server.request, "HEAD / HTTP/1.0\r\n\r\n");
  assert.equal(code, 0);
  assert.equal(stdout, head);
});

Deno.test("http_head --http11 sends a Host header and stops at the end of the head", async () => {
  const head = "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n";
  const server = rawServer(head, 2_000); // keeps the connection open, as HTTP/1.1 may
  const started = Date.now();
  const { code, stdout } = await runRaw([
    "--http11",
    `127.0.0.1:${server.port}`,
    "/index.html?x=1",
  ]);
  assert.ok(Date.now() - started < 1_900, "waited for the server to close");
  assert.equal(code, 0);
  assert.equal(stdout, head);
  assert.equal(
    await server.request,
    `HEAD /index.html?x=1 HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nConnection: close\r\n\r\n`,
  );
});

Deno.test("http_head asks a real HTTP server (Deno.serve) and prints its status line", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => new Response(`Hello, you've requested: ${new URL(req.url).pathname}\n`),
  );
  const { code, stdout } = await runScript("http_head", [
    `http://127.0.0.1:${server.addr.port}/hello`,
  ]);
  assert.equal(code, 0);
  assert.match(stdout, /^HTTP\/1\.[01] 200 OK$/m);
  assert.match(stdout, /^content-length: 32$/im);
});

Deno.test("http_head times out with a clear error when the server says nothing", async () => {
  const server = rawServer("", 1_000);
  const { code, stderr } = await runScript("http_head", [
    "--timeout",
    "300ms",
    `127.0.0.1:${server.port}`,
  ]);
  await server.request;
  assert.equal(code, 1);
  assert.match(stderr, /No complete response head from 127.0.0.1:\d+ within 300 ms/);
});

Deno.test("http_head refuses a head over 64 KiB and reports a refused connection", async () => {
  const server = rawServer("HTTP/1.0 200 OK\r\nX: " + "y".repeat(70_000) + "\r\n\r\n");
  const big = await runScript("http_head", [`127.0.0.1:${server.port}`]);
  await server.request;
  assert.equal(big.code, 1);
  assert.match(big.stderr, /Response head exceeds 65536 bytes/);
  const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (free.addr as Deno.NetAddr).port;
  free.close();
  const refused = await runScript("http_head", [`127.0.0.1:${port}`]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Cannot connect to 127.0.0.1:\d+: Connection refused/);
});

Deno.test("http_head rejects bad targets and paths with exit 2", async () => {
  for (
    const [args, pattern] of [
      [["host:99999"], /Cannot parse address "host:99999": port must be 0-65535/],
      [["https://example.com/"], /HTTPS is not spoken here/],
      [["localhost:80", "no-slash"], /Invalid path "no-slash"/],
      [["localhost:80", "/a b"], /Invalid path "\/a b"/],
      [["--timeout", "x", "localhost:80"], /Invalid --timeout "x"/],
      [[], /Missing argument/],
    ] as const
  ) {
    const { code, stderr } = await runScript("http_head", [...args]);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr, pattern);
  }
});

Deno.test("parseTarget() and headRequest() read hosts, ports, URLs and IPv6", () => {
  assert.deepEqual(parseTarget("example.com"), {
    address: { transport: "tcp", hostname: "example.com", port: 80 },
    path: null,
  });
  assert.equal(parseTarget("[::1]:8080").address.hostname, "::1");
  assert.equal(parseTarget("[::1]").address.port, 80);
  assert.deepEqual(parseTarget("http://[::1]:81/a?b").path, "/a?b");
  const v6 = { transport: "tcp", hostname: "::1", port: 80 } as const;
  assert.equal(headRequest(v6, "/", { http11: true }).split("\r\n")[1], "Host: [::1]");
});
