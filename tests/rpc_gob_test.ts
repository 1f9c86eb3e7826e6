import assert from "node:assert/strict";
import { runScript, startScript, withTimeout } from "./helpers.ts";
import { buildSeed, missingSeeds, startSeed, startSeedServer } from "./seed_programs.ts";
import { callGob } from "../lib/rpc/gob_rpc.ts";
import { GobDecoder, GobEncoder, GobReader } from "../lib/rpc/gob.ts";
import { GO_RPC_CONNECTED } from "../lib/rpc/gob_rpc.ts";

async function startRpcServer() {
  const server = await startScript("rpc_server", [
    "--host=127.0.0.1",
    "--port=0",
    "--http-port=0",
  ]);
  const httpLine = await server.stdout.waitFor(/Listening on http:\/\//);
  const httpPort = Number(/:(\d+)\/rpc$/.exec(httpLine)![1]);
  return Object.assign(server, { httpPort });
}

/** Runs a seed client to its end (bounded), returning its output. */
async function runSeedClient(
  seed: string,
  marker: string,
  addr: string,
  args: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  await using binary = await buildSeed(seed, marker);
  await using client = startSeed(binary, addr, args);
  const status = await withTimeout(client.child.status, 10_000, `seed ${seed} client`);
  await Promise.all([client.stdout.done, client.stderr.done]);
  return { code: status.code, stdout: client.stdout.text, stderr: client.stderr.text };
}

Deno.test({
  name: "rpc_server answers seed 002's rpc.Dial client (gob) and seed 001's rpc.DialHTTP client",
  ignore: missingSeeds(),
  async fn() {
    await using server = await startRpcServer();
    const arith = await runSeedClient("002", "rpc.Dial(", `127.0.0.1:${server.port}`);
    assert.equal(arith.code, 0, arith.stderr);
    assert.match(arith.stderr, /Arith: 7\*8=56$/);
    const sum = await runSeedClient("001", "rpc.DialHTTP(", `127.0.0.1:${server.httpPort}`, [
      "30",
      "12",
    ]);
    assert.equal(sum.code, 0, sum.stderr);
    assert.equal(sum.stdout, "Algorithm 和为: 30+12=42");
    // The JSON dialects still share the ports.
    const json = await runScript("rpc_client", [
      `127.0.0.1:${server.port}`,
      "Arith.Multiply",
      '{"A":6,"B":7}',
    ]);
    // In a pipe only the JSON result is on stdout.
    assert.equal(json.stdout, "42");
  },
});

Deno.test("rpc_client --dialect gob calls rpc_server over TCP and through CONNECT", async () => {
  await using server = await startRpcServer();
  const tcp = `127.0.0.1:${server.port}`;
  const http = `http://127.0.0.1:${server.httpPort}`;
  const cases: [string[], number, RegExp][] = [
    [[tcp, "Arith.Multiply", '{"A":7,"B":8}'], 0, /^56$/],
    [["--http", http, "Algorithm.Sum", '{"X":3,"Y":4}'], 0, /^7$/],
    [["--http", `${http}/_goRPC_`, "Arith.Divide", '{"A":-7,"B":2}'], 0, /^{"Quo":-3,"Rem":-1}$/],
    [[tcp, "Programmer.GetSkill", '{"Java":"J","Go":"G"}'], 0, /^"Skill1:J，Skill2G"/],
  ];
  for (const [args, code, pattern] of cases) {
    const result = await runScript("rpc_client", ["--dialect", "gob", ...args]);
    assert.equal(result.code, code, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stdout, pattern);
  }
  const errors: [string[], RegExp][] = [
    [[tcp, "Arith.Divide", '{"A":1,"B":0}'], /Arith\.Divide: divide by zero$/],
    [[tcp, "Arith.Power", "{}"], /rpc: can't find method Arith\.Power/],
    [[tcp, "Arith.Multiply", '{"A":"x","B":1}'], /param "A" must be an integer/],
    [["--http", `${http}/elsewhere`, "Arith.Multiply", "{}"], /CONNECT \/elsewhere refused/],
  ];
  for (const [args, pattern] of errors) {
    const result = await runScript("rpc_client", ["--dialect", "gob", ...args]);
    assert.equal(result.code, 1, `${args.join(" ")}: ${result.stdout}`);
    assert.match(result.stderr, pattern);
  }
});

Deno.test({
  name: "rpc_client --dialect gob calls seed 002's rpc.ServeConn server and seed 001's HandleHTTP",
  ignore: missingSeeds(),
  async fn() {
    {
      await using binary = await buildSeed("002", "rpc.ServeConn(");
      await using server = await startSeedServer(binary);
      const addr = `127.0.0.1:${server.port}`;
      let result = await runScript("rpc_client", [
        "--dialect=gob",
        addr,
        "Arith.Multiply",
        '{"A":7,"B":8}',
      ]);
      assert.equal(result.code, 0, result.stderr);
      // In a pipe the seed's sentence goes to stderr, the JSON result alone to stdout.
      assert.equal(result.stdout, "56");
      assert.match(result.stderr, /Arith: 7\*8=56/);
      result = await runScript("rpc_client", ["--dialect=gob", addr, "Arith.Divide", "{}"]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /rpc: can't find method Arith\.Divide/);
      result = await runScript("rpc_client", [
        "--dialect=gob",
        addr,
        "Arith.Multiply",
        '{"A":"x","B":8}',
      ]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /gob: .*Args/);
    }
    {
      await using binary = await buildSeed("001", "rpc.HandleHTTP()");
      await using server = await startSeedServer(binary);
      const result = await runScript("rpc_client", [
        "--dialect=gob",
        "--http",
        `http://127.0.0.1:${server.port}`,
        "Algorithm.Sum",
        '{"X":3,"Y":4}',
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "7");
      assert.match(result.stderr, /Algorithm 和为: 3\+4=7/);
    }
  },
});

/** Reads until the peer closes; resolves with what came. */
async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: number[] = [];
  const buf = new Uint8Array(4096);
  try {
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      chunks.push(...buf.subarray(0, n));
    }
  } catch {
    // Reset by the server: closed as well.
  }
  return new Uint8Array(chunks);
}

Deno.test("rpc_server answers a gob argument of the wrong type and closes undecodable gob within a second", async () => {
  await using server = await startRpcServer();
  // A wrong argument gets Go's error reply; the connection goes on serving.
  {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const wrong = await callGob(conn, "Algorithm.Sum", { X: "3", Y: 4 });
    assert.match(wrong.error ?? "", /param "X" must be an integer/);
  }
  // Hostile gob after a valid start: a huge length, an unknown type id, a
  // header that is no Request. Each closes the connection at once.
  const request = new GobEncoder().encode(
    { struct: "Request", fields: [["ServiceMethod", "string"], ["Seq", "uint"]] },
    { ServiceMethod: "Arith.Multiply", Seq: 1 },
  );
  const definition = request.subarray(0, request[0] + 1);
  const hostile = [
    [...definition, 0xf8, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    [...definition, 4, 0xff, 0xc8, 0, 0],
    [...definition, ...new GobEncoder().encode("int", 5)],
  ];
  for (const bytes of hostile) {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(new Uint8Array(bytes));
    await withTimeout(readToEnd(conn), 1_000, `closing after ${bytes.slice(0, 4)}`);
  }
  // The same through CONNECT, after Go's answer.
  {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.httpPort });
    await conn.write(new TextEncoder().encode("CONNECT /_goRPC_ HTTP/1.0\n\n"));
    await conn.write(new Uint8Array(hostile[0]));
    const got = await withTimeout(readToEnd(conn), 1_000, "closing after CONNECT");
    assert.equal(new TextDecoder().decode(got), GO_RPC_CONNECTED);
  }
  // A CONNECT head that never ends is closed within a second.
  {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.httpPort });
    await conn.write(new TextEncoder().encode("CONNECT /_goRPC_ HTTP/1.0\n"));
    await withTimeout(readToEnd(conn), 2_000, "closing a stalled CONNECT");
  }
  // Everyone else is still served.
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  assert.deepEqual(await callGob(conn, "Arith.Multiply", { A: 6, B: 7 }), { result: 42 });
});

Deno.test("rpc_server answers pipelined gob calls in order, also those before a broken one", async () => {
  await using server = await startRpcServer();
  const REQUEST = {
    struct: "Request",
    fields: [["ServiceMethod", "string"], ["Seq", "uint"]],
  } as const;
  const ARGS = { struct: "Args", fields: [["A", "int"], ["B", "int"]] } as const;
  const encoder = new GobEncoder();
  const calls: number[] = [];
  for (let seq = 0; seq < 3; seq++) {
    calls.push(
      ...encoder.encode(REQUEST, { ServiceMethod: "Arith.Multiply", Seq: seq }),
      ...encoder.encode(ARGS, { A: seq + 1, B: 10 }),
    );
  }
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  // Three calls and a message of a type never defined, in one write.
  await conn.write(new Uint8Array([...calls, 4, 0xff, 0xc8, 0, 0]));
  const reader = new GobReader(conn);
  const decoder = new GobDecoder();
  const values: unknown[] = [];
  await withTimeout(
    (async () => {
      for (let m = await reader.next(); m !== null; m = await reader.next()) {
        const decoded = decoder.decode(m);
        if (decoded.kind === "value") values.push(decoded.value);
      }
    })(),
    2_000,
    "the three replies, then the close",
  );
  assert.deepEqual(values, [
    { ServiceMethod: "Arith.Multiply", Seq: 0, Error: "" },
    10,
    { ServiceMethod: "Arith.Multiply", Seq: 1, Error: "" },
    20,
    { ServiceMethod: "Arith.Multiply", Seq: 2, Error: "" },
    30,
  ]);
});
