import assert from "node:assert/strict";
import { requestPath } from "../scripts/http_server.ts";
import { runScript, startScript } from "./helpers.ts";

Deno.test("requestPath() decodes the path as Go's r.URL.Path does", () => {
  assert.equal(requestPath("http://h/a%20b/c"), "/a b/c");
  assert.equal(requestPath("http://h/bad%zz"), "/bad%zz");
  assert.equal(requestPath("http://h"), "/");
});

Deno.test("http_server answers every path, to fetch and to http_client", async () => {
  await using server = await startScript("http_server", ["127.0.0.1:0"]);
  const response = await fetch(`http://127.0.0.1:${server.port}/any/path?q=1`);
  assert.equal(await response.text(), "Hello, you've requested: /any/path\n");
  const result = await runScript("http_client", [`http://127.0.0.1:${server.port}/hello`]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "Hello, you've requested: /hello");
  await server.stderr.waitFor(/127\.0\.0\.1:\d+ GET \/hello/);
  server.kill("SIGTERM");
  assert.equal((await server.exit()).code, 0);
});

Deno.test("http_client exits 1 on HTTP errors and timeouts, printing why", async () => {
  const hang = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/slow") await hang.promise;
    if (path === "/big") return new Response("x".repeat(5000));
    return new Response("no such page\n", { status: path === "/boom" ? 500 : 404 });
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const missing = await runScript("http_client", [`${base}/missing`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /HTTP 404 Not Found from http:\/\/127\.0\.0\.1:\d+\/missing/);
    assert.equal(missing.stdout, "");
    const boom = await runScript("http_client", [`${base}/boom`]);
    assert.equal(boom.code, 1);
    assert.match(boom.stderr, /HTTP 500/);
    const slow = await runScript("http_client", ["--timeout", "300ms", `${base}/slow`]);
    assert.equal(slow.code, 1);
    assert.match(slow.stderr, /Timed out after 300 ms fetching/);
    const big = await runScript("http_client", ["--max-bytes", "1000", `${base}/big`]);
    assert.equal(big.code, 1);
    assert.match(big.stderr, /exceeds 1000 bytes/);
  } finally {
    hang.resolve();
    await server.shutdown();
  }
});

Deno.test("http_client exits 1 when nothing listens and 2 on a bad URL", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const refused = await runScript("http_client", [`http://127.0.0.1:${port}/`]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /http_client: .*(refused|connect)/i);
  const bad = await runScript("http_client", ["ftp://example.com/"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Invalid URL "ftp:\/\/example.com\/"/);
});
