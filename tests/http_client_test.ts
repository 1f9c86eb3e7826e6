import assert from "node:assert/strict";
import { runScript, startScript } from "./helpers.ts";

Deno.test("http_client -i, -I and -o against http_server, as curl shows them", async () => {
  await using server = await startScript("http_server", ["127.0.0.1:0"]);
  const url = `http://127.0.0.1:${server.port}/hi`;
  const included = await runScript("http_client", ["-i", url]);
  assert.equal(included.code, 0, included.stderr);
  // curl's CRLF lines; the helper's line reader hands them over without the CR.
  const [head, body] = included.stdout.split(/\r?\n\r?\n/);
  const lines = head.split(/\r?\n/);
  assert.equal(lines[0], "HTTP/1.1 200 OK");
  assert.ok(lines.includes("content-type: text/plain; charset=utf-8"), head);
  assert.equal(body, "Hello, you've requested: /hi");

  const headOnly = await runScript("http_client", ["-I", url]);
  assert.equal(headOnly.code, 0, headOnly.stderr);
  assert.match(headOnly.stdout, /^HTTP\/1\.1 200 OK\r?\n/);
  assert.doesNotMatch(headOnly.stdout, /Hello/);
  await server.stderr.waitFor(/ HEAD \/hi$/);
  const put = await runScript("http_client", ["-X", "PUT", "-H", "X-A: 1", "-d", "body", url]);
  assert.equal(put.code, 0, put.stderr);
  assert.equal(put.stdout, "Hello, you've requested: /hi");
  await server.stderr.waitFor(/ PUT \/hi$/);

  const file = await Deno.makeTempFile();
  try {
    const saved = await runScript("http_client", ["-o", file, url]);
    assert.equal(saved.code, 0, saved.stderr);
    assert.equal(saved.stdout, "");
    assert.equal(await Deno.readTextFile(file), "Hello, you've requested: /hi\n");
    const withHead = await runScript("http_client", ["-i", "-o", file, url]);
    assert.equal(withHead.code, 0, withHead.stderr);
    assert.equal(withHead.stdout, "");
    assert.match(
      await Deno.readTextFile(file),
      /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nHello, you've requested: \/hi\n$/,
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("http_client sends -H headers and -d, --data-binary @file and -X bodies", async () => {
  const seen: Array<{ method: string; type: string | null; token: string | null; body: string }> =
    [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    seen.push({
      method: req.method,
      type: req.headers.get("content-type"),
      token: req.headers.get("x-token"),
      body: await req.text(),
    });
    return new Response("ok\n");
  });
  const file = await Deno.makeTempFile();
  try {
    const url = `http://127.0.0.1:${server.addr.port}/in`;
    await Deno.writeTextFile(file, "line one\nline two\n");
    for (
      const args of [
        ["-H", "X-Token: secret", "-d", "a=1", "-d", "b=2", url],
        ["--data-binary", `@${file}`, "-H", "Content-Type: text/plain", url],
        ["-d", `@${file}`, url],
        ["-X", "PUT", "--data-binary", "put body", url],
        ["--method", "delete", url],
      ]
    ) {
      const result = await runScript("http_client", args);
      assert.equal(result.code, 0, `${args}: ${result.stderr}`);
      assert.equal(result.stdout, "ok");
    }
    assert.deepEqual(seen, [
      {
        method: "POST",
        type: "application/x-www-form-urlencoded",
        token: "secret",
        body: "a=1&b=2",
      },
      { method: "POST", type: "text/plain", token: null, body: "line one\nline two\n" },
      {
        method: "POST",
        type: "application/x-www-form-urlencoded",
        token: null,
        body: "line oneline two",
      },
      { method: "PUT", type: null, token: null, body: "put body" },
      { method: "DELETE", type: null, token: null, body: "" },
    ]);
  } finally {
    await Deno.remove(file);
    await server.shutdown();
  }
});

Deno.test("http_client follows a redirect only with -L", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      new URL(req.url).pathname === "/old"
        ? new Response("moved\n", { status: 302, headers: { location: "/new" } })
        : new Response("new place\n"),
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}/old`;
    const stay = await runScript("http_client", ["-i", url]);
    assert.equal(stay.code, 0, stay.stderr);
    assert.match(stay.stdout, /^HTTP\/1\.1 302 Found\r?\n/);
    assert.match(stay.stdout, /location: \/new\r?\n/);
    const follow = await runScript("http_client", ["-L", url]);
    assert.equal(follow.code, 0, follow.stderr);
    assert.equal(follow.stdout, "new place");
  } finally {
    await server.shutdown();
  }
});

Deno.test("http_client reports a refused connection in one line, exit 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const refused = await runScript("http_client", [`http://127.0.0.1:${port}/`]);
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr,
    `http_client: Cannot fetch http://127.0.0.1:${port}/: Connection refused`,
  );
  const missing = await runScript("http_client", ["-d", "@/nonexistent/file", "http://x/"]);
  assert.equal(missing.code, 1);
  assert.equal(
    missing.stderr,
    'http_client: Cannot read -d "@/nonexistent/file": No such file or directory',
  );
});
