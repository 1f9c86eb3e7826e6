import assert from "node:assert/strict";
import { buildGoFixture } from "./go_fixtures.ts";
import {
  delay,
  missingPeer,
  runScript,
  type ScriptProcess,
  startScript,
  TcpPeer,
} from "./helpers.ts";

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Starts rpc_server on 127.0.0.1, both ports 0; returns it and its HTTP URL. */
async function startRpc(args: string[] = []): Promise<[ScriptProcess, string]> {
  const server = await startScript("rpc_server", [
    "--host=127.0.0.1",
    "--port=0",
    "--http-port=0",
    ...args,
  ]);
  const line = await server.stdout.waitFor(/Listening on http:\/\//);
  return [server, line.slice(line.indexOf("http://"))];
}

/** Sends text and reads one reply line as JSON. */
async function roundTrip(peer: TcpPeer, text: string): Promise<unknown> {
  await peer.send(text);
  return JSON.parse(await peer.readLine() ?? "null");
}

function errorOf(reply: unknown): { code: number; message: string } {
  return (reply as { error: { code: number; message: string } }).error;
}

Deno.test("rpc_server answers the seeds' methods in Go's dialect and 2.0, and stops on SIGTERM", async () => {
  const [server, url] = await startRpc();
  await using _server = server;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/rpc$/);
  await server.stderr.waitFor(`Serving RPC server on port ${server.port}`);
  await using peer = await TcpPeer.connect(server.port);
  assert.deepEqual(
    await roundTrip(peer, '{"method":"Arith.Multiply","params":[{"A":7,"B":8}],"id":0}\n'),
    { id: 0, result: 56, error: null },
  );
  assert.deepEqual(
    await roundTrip(peer, '{"method":"Algorithm.Sum","params":[{"X":3,"Y":4}],"id":1}\n'),
    { id: 1, result: 7, error: null },
  );
  assert.deepEqual(
    await roundTrip(
      peer,
      '{"method":"Programmer.GetSkill","params":[{"Java":"Java","Go":"Go"}],"id":2}\n',
    ),
    { id: 2, result: "Skill1:Java，Skill2Go", error: null },
  );
  assert.deepEqual(
    await roundTrip(peer, '{"jsonrpc":"2.0","method":"Algorithm.Sum","params":[3,4],"id":"s"}\n'),
    { jsonrpc: "2.0", id: "s", result: 7 },
  );
  // A notification gets no reply; the next request's reply comes next.
  await peer.send('{"jsonrpc":"2.0","method":"Arith.Multiply","params":[1,1]}\n');
  assert.deepEqual(
    await roundTrip(
      peer,
      '{"jsonrpc":"2.0","method":"Arith.Multiply","params":{"A":6,"B":7},"id":3}',
    ),
    { jsonrpc: "2.0", id: 3, result: 42 },
  );
  peer.close();
  server.kill("SIGTERM");
  assert.equal((await server.exit()).code, 0, server.output);
});

Deno.test("rpc_server answers bad input with errors and keeps the connection serving", async () => {
  const [server] = await startRpc(["-q"]);
  await using _server = server;
  await using peer = await TcpPeer.connect(server.port);
  // Truncated JSON, then a good request on the next line.
  await peer.send('{"method":"Arith.Multiply","params":[{"A":7\n');
  await peer.send('{"method":"Arith.Multiply","params":[{"A":2,"B":3}],"id":1}\n');
  const truncated = JSON.parse(await peer.readLine() ?? "");
  assert.equal(errorOf(truncated).code, -32700);
  assert.equal(
    errorOf(truncated).message,
    "Parse error: Unexpected '{' where ',' or '}' should be",
  );
  assert.deepEqual(JSON.parse(await peer.readLine() ?? ""), { id: 1, result: 6, error: null });
  // Not JSON at all.
  assert.equal(errorOf(await roundTrip(peer, "hello there\n")).code, -32700);
  // A JSON value that is not an object.
  for (const value of ["42", '"Arith.Multiply"', "null", "true"]) {
    const reply = await roundTrip(peer, `${value}\n`);
    assert.deepEqual(errorOf(reply).code, -32600, value);
    assert.match(errorOf(reply).message, /Invalid Request: expected an object/);
  }
  // Unknown methods, in each dialect.
  assert.deepEqual(await roundTrip(peer, '{"method":"Arith.Power","params":[{}],"id":2}\n'), {
    id: 2,
    result: null,
    error: "rpc: can't find method Arith.Power",
  });
  assert.deepEqual(
    errorOf(await roundTrip(peer, '{"jsonrpc":"2.0","method":"Arith.Power","id":3}\n')),
    { code: -32601, message: 'Method not found: "Arith.Power"' },
  );
  // Wrong param types: strings, fractions, numbers beyond 2^53.
  assert.deepEqual(
    await roundTrip(peer, '{"method":"Arith.Multiply","params":[{"A":"7","B":8}],"id":4}\n'),
    {
      id: 4,
      result: null,
      error: `param "A" must be an integer within ±${MAX_SAFE}, got "7"`,
    },
  );
  assert.deepEqual(
    errorOf(
      await roundTrip(
        peer,
        '{"jsonrpc":"2.0","method":"Algorithm.Sum","params":[1.5,9007199254740993],"id":5}\n',
      ),
    ),
    {
      code: -32602,
      message: `Invalid params: param "X" must be an integer within ±${MAX_SAFE}, got 1.5`,
    },
  );
  assert.deepEqual(
    errorOf(
      await roundTrip(
        peer,
        '{"jsonrpc":"2.0","method":"Programmer.GetSkill","params":[1,2],"id":6}\n',
      ),
    ).code,
    -32602,
  );
  // A result beyond Number.MAX_SAFE_INTEGER is an error, not a wrong number.
  assert.deepEqual(
    await roundTrip(peer, `{"method":"Algorithm.Sum","params":[{"X":${MAX_SAFE},"Y":1}],"id":7}\n`),
    {
      id: 7,
      result: null,
      error: `Integer overflow: ${MAX_SAFE}+1 exceeds Number.MAX_SAFE_INTEGER (${MAX_SAFE})`,
    },
  );
  // A huge array: as params, as a batch, and nested deeply.
  const numbers = Array.from({ length: 20_000 }, (_, i) => i).join(",");
  assert.deepEqual(
    errorOf(
      await roundTrip(
        peer,
        `{"jsonrpc":"2.0","method":"Arith.Multiply","params":[${numbers}],"id":8}\n`,
      ),
    ),
    { code: -32602, message: "Invalid params: expected 2 params (A, B), got 20000" },
  );
  const calls = Array.from(
    { length: 3000 },
    () => '{"jsonrpc":"2.0","method":"Arith.Multiply","params":[1,1],"id":1}',
  );
  assert.deepEqual(errorOf(await roundTrip(peer, `[${calls.join(",")}]\n`)), {
    code: -32600,
    message: "Invalid Request: batch of 3000 requests exceeds the limit of 1000",
  });
  assert.deepEqual(errorOf(await roundTrip(peer, "[".repeat(10_000) + "\n")), {
    code: -32700,
    message: "Parse error: JSON nesting deeper than 64 levels",
  });
  // Still serving after all of that.
  assert.deepEqual(
    await roundTrip(peer, '{"method":"Arith.Multiply","params":[{"A":9,"B":9}],"id":9}\n'),
    { id: 9, result: 81, error: null },
  );
});

Deno.test("rpc_server reads a request split across TCP packets, a byte at a time too", async () => {
  const [server] = await startRpc(["-q"]);
  await using _server = server;
  await using peer = await TcpPeer.connect(server.port);
  const request = '{"method":"Programmer.GetSkill","params":[{"Java":"Ja\\"va","Go":"Gö"}],"id":1}';
  for (const piece of [request.slice(0, 10), request.slice(10, 45), request.slice(45)]) {
    await peer.send(piece);
    await delay(30); // separate packets, not one coalesced write
  }
  assert.deepEqual(JSON.parse(await peer.readLine() ?? ""), {
    id: 1,
    result: 'Skill1:Ja"va，Skill2Gö',
    error: null,
  });
  // No newline after it: the value ends at its closing brace.
  for (const byte of new TextEncoder().encode(request.replace('"id":1', '"id":2'))) {
    await peer.send(Uint8Array.of(byte));
  }
  assert.equal(JSON.parse(await peer.readLine() ?? "").id, 2);
});

Deno.test("rpc_server answers many pipelined requests in one packet, in order", async () => {
  const [server] = await startRpc(["-q"]);
  await using _server = server;
  await using peer = await TcpPeer.connect(server.port);
  const count = 2000;
  const requests = Array.from(
    { length: count },
    (_, i) =>
      i % 2 === 0
        ? `{"method":"Arith.Multiply","params":[{"A":${i},"B":2}],"id":${i}}`
        : `{"jsonrpc":"2.0","method":"Arith.Multiply","params":[${i},2],"id":${i}}`,
  );
  await peer.send(requests.join("")); // back to back, no newlines at all
  for (let i = 0; i < count; i++) {
    const reply = JSON.parse(await peer.readLine() ?? "") as { id: number; result: number };
    assert.equal(reply.id, i);
    assert.equal(reply.result, i * 2);
  }
});

Deno.test("rpc_server closes a 1 MiB JSON line beyond the limit; others are unaffected", async () => {
  const [server] = await startRpc(["-q"]);
  await using _server = server;
  await using flood = await TcpPeer.connect(server.port);
  await using other = await TcpPeer.connect(server.port);
  const huge = `{"method":"Programmer.GetSkill","params":[{"Java":"${"x".repeat(1 << 20)}"}]}\n`;
  const sending = flood.send(huge).catch(() => {}); // the server may reset mid-send
  const lines = await flood.readAll();
  await sending;
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.deepEqual(JSON.parse(lines[0]), {
    jsonrpc: "2.0",
    id: null,
    error: {
      code: -32600,
      message: "Invalid Request: JSON value exceeds the limit of 262144 bytes",
    },
  });
  assert.deepEqual(
    await roundTrip(other, '{"method":"Arith.Multiply","params":[{"A":7,"B":8}],"id":0}\n'),
    { id: 0, result: 56, error: null },
  );
});

Deno.test("rpc_server answers POST /rpc over HTTP, and refuses what is not JSON-RPC", async () => {
  const [server, url] = await startRpc(["-q"]);
  await using _server = server;
  const post = (body: string) =>
    fetch(url, { method: "POST", body, headers: { "content-type": "application/json" } });

  let response = await post('{"jsonrpc":"2.0","method":"Algorithm.Sum","params":[3,4],"id":1}');
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /application\/json/);
  assert.deepEqual(await response.json(), { jsonrpc: "2.0", id: 1, result: 7 });

  response = await post(
    '[{"jsonrpc":"2.0","method":"Arith.Multiply","params":{"A":7,"B":8},"id":1},' +
      '{"jsonrpc":"2.0","method":"Arith.Multiply","params":[1,1]},' +
      '{"jsonrpc":"2.0","method":"Nope","id":3}]',
  );
  assert.deepEqual(await response.json(), [
    { jsonrpc: "2.0", id: 1, result: 56 },
    { jsonrpc: "2.0", id: 3, error: { code: -32601, message: 'Method not found: "Nope"' } },
  ]);

  response = await post('{"jsonrpc":"2.0","method":"Arith.Multiply","params":[1,1]}');
  assert.equal(response.status, 204);
  await response.body?.cancel();

  response = await post('{"method":"Arith.Multiply","params":[{"A":2,"B":5}],"id":7}');
  assert.deepEqual(await response.json(), { id: 7, result: 10, error: null });

  response = await post("this is not json");
  assert.equal(response.status, 400);
  assert.equal(errorOf(await response.json()).code, -32700);

  response = await fetch(url);
  assert.equal(response.status, 405);
  assert.equal(response.headers.get("allow"), "POST");
  await response.body?.cancel();

  response = await fetch(url.replace(/\/rpc$/, "/other"), { method: "POST", body: "{}" });
  assert.equal(response.status, 404);
  await response.body?.cancel();

  response = await post(`{"pad":"${"x".repeat(300_000)}"}`);
  assert.equal(response.status, 413);
  assert.equal(errorOf(await response.json()).code, -32600);
});

Deno.test({
  name: "rpc_server serves a Go net/rpc/jsonrpc client (jsonrpc.Dial, client.Call)",
  ignore: missingPeer("go"),
  async fn() {
    await using client = await buildGoFixture("go_rpc_client");
    const [server] = await startRpc(["-q"]);
    await using _server = server;
    const { code, stdout, stderr } = await new Deno.Command(client.path, {
      args: [`127.0.0.1:${server.port}`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stdout);
    assert.equal(code, 0, text + new TextDecoder().decode(stderr));
    assert.deepEqual(text.trimEnd().split("\n"), [
      "Arith: 7*8=56",
      "Algorithm 和为: 3+4=7",
      "receive Skill1:Java，Skill2Go",
      "unknown method error: rpc: can't find method Arith.Power",
      `bad params error: param "A" must be an integer within ±${MAX_SAFE}, got "seven"`,
      `overflow error: Integer overflow: 1099511627776*1048576 exceeds Number.MAX_SAFE_INTEGER (${MAX_SAFE})`,
      "concurrent calls: 200, wrong: 0",
    ]);
  },
});

Deno.test("rpc_server rejects bad options with exit 2 and prints --help", async () => {
  for (
    const [args, pattern] of [
      [["--port", "x:99999"], /Cannot parse address "x:99999"/],
      [["--http-port", "70000"], /port must be 0-65535/],
      [["--max-request", "1"], /Invalid --max-request "1"/],
      [["extra"], /Unexpected argument "extra"/],
    ] as const
  ) {
    const { code, stderr } = await runScript("rpc_server", [...args]);
    assert.equal(code, 2, `${args}: ${stderr}`);
    assert.match(stderr, pattern);
  }
  const { code, stdout } = await runScript("rpc_server", ["--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /^Usage: rpc_server/);
  assert.match(stdout, /Arith\.Multiply/);
});
