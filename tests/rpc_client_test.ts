import assert from "node:assert/strict";
import { buildGoFixture, startGoServer } from "./go_fixtures.ts";
import { missingPeer, runScript, startScript } from "./helpers.ts";

Deno.test("rpc_client calls rpc_server over TCP and HTTP: JSON alone on stdout, sentence on stderr", async () => {
  await using server = await startScript("rpc_server", [
    "--host=127.0.0.1",
    "--port=0",
    "--http-port=0",
    "-q",
  ]);
  const httpLine = await server.stdout.waitFor(/Listening on http:\/\//);
  const url = httpLine.slice(httpLine.indexOf("http://"));
  const addr = `127.0.0.1:${server.port}`;
  const cases: Array<[string[], string]> = [
    [[addr, "Arith.Multiply", '{"A":7,"B":8}'], "56\nArith: 7*8=56"],
    [[addr, "Algorithm.Sum", '{"X":3,"Y":4}'], "7\nAlgorithm 和为: 3+4=7"],
    [
      [addr, "Programmer.GetSkill", '{"Java":"Java","Go":"Go"}'],
      '"Skill1:Java，Skill2Go"\nreceive Skill1:Java，Skill2Go',
    ],
    [["--dialect", "2.0", addr, "Arith.Multiply", "[6,7]"], "42\nArith: 6*7=42"],
    [["--http", url, "Algorithm.Sum", "[30,12]"], "42\nAlgorithm 和为: 30+12=42"],
    [["--http", url, "--dialect=go", "Arith.Multiply", '{"A":2,"B":3}'], "6\nArith: 2*3=6"],
  ];
  for (const [args, want] of cases) {
    const { code, stdout, stderr } = await runScript("rpc_client", args);
    assert.equal(code, 0, `${args.join(" ")}: ${stderr}`);
    const [json, sentence] = want.split("\n");
    assert.equal(stdout, json); // one JSON value, nothing else: `| jq` works
    JSON.parse(stdout);
    assert.equal(stderr, sentence);
  }
  // RPC errors: printed on stderr, exit 1.
  for (
    const [args, pattern] of [
      [[addr, "Arith.Power", "{}"], /Arith\.Power: rpc: can't find method Arith\.Power/],
      [
        ["--http", url, "Arith.Multiply", '{"A":"7","B":8}'],
        /Invalid params: param "A" must be an integer.* \(code -32602\)/,
      ],
      [[addr, "Arith.Multiply", '{"A":9007199254740991,"B":3}'], /Integer overflow/],
    ] as const
  ) {
    const { code, stdout, stderr } = await runScript("rpc_client", [...args]);
    assert.equal(code, 1, `${args.join(" ")}: ${stdout}`);
    assert.equal(stdout, "");
    assert.match(stderr, pattern);
  }
});

Deno.test("rpc_client refuses bad arguments with exit 2", async () => {
  for (
    const [args, pattern] of [
      [["127.0.0.1:1", "Arith.Multiply", "{A:7}"], /Invalid PARAMS_JSON "{A:7}"/],
      [["127.0.0.1:1", "Arith.Multiply"], /Missing argument: ADDR METHOD PARAMS_JSON/],
      [["nohost", "Arith.Multiply", "{}"], /Cannot parse address "nohost"/],
      [["--dialect=3", "127.0.0.1:1", "A.B", "{}"], /Invalid --dialect "3"/],
      [["--http", "ftp://x/rpc", "A.B", "{}"], /expected an http:\/\/ or https:\/\/ URL/],
      [["--dialect=2.0", "127.0.0.1:1", "A.B", "5"], /2\.0 needs an object or an array/],
    ] as const
  ) {
    const { code, stderr } = await runScript("rpc_client", [...args]);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr, pattern);
  }
  const { code, stdout } = await runScript("rpc_client", ["--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /^Usage: rpc_client ADDR METHOD PARAMS_JSON/);
});

Deno.test("rpc_client exits 1 when nobody listens or no reply comes in time", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn); // accepts, never answers
  })();
  const silent = await runScript("rpc_client", [
    "--timeout=300ms",
    `127.0.0.1:${port}`,
    "Arith.Multiply",
    "{}",
  ]);
  assert.equal(silent.code, 1);
  assert.match(silent.stderr, /No reply in time/);
  listener.close();
  await accepting.catch(() => {});
  for (const conn of held) conn.close();

  const refused = await runScript("rpc_client", [`127.0.0.1:${port}`, "Arith.Multiply", "{}"]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`Cannot connect to 127\\.0\\.0\\.1:${port}`));
});

Deno.test({
  name: "rpc_client calls a Go jsonrpc.ServeConn server",
  ignore: missingPeer("go"),
  async fn() {
    await using binary = await buildGoFixture("go_rpc_server");
    await using server = await startGoServer(binary);
    const addr = `127.0.0.1:${server.port}`;
    let result = await runScript("rpc_client", [
      addr,
      "Programmer.GetSkill",
      '{"Java":"Java","Go":"Go"}',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      [result.stdout, result.stderr],
      ['"Skill1:Java，Skill2Go"', "receive Skill1:Java，Skill2Go"],
    );
    result = await runScript("rpc_client", [addr, "Arith.Multiply", '{"A":7,"B":8}']);
    assert.deepEqual([result.stdout, result.stderr], ["56", "Arith: 7*8=56"]);
    result = await runScript("rpc_client", [addr, "Algorithm.Sum", '{"X":3,"Y":4}']);
    assert.deepEqual([result.stdout, result.stderr], ["7", "Algorithm 和为: 3+4=7"]);
    result = await runScript("rpc_client", [addr, "Arith.Multiply", '{"A":"x","B":8}']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /json: cannot unmarshal string into Go struct field Args\.A/);
    result = await runScript("rpc_client", [addr, "Arith.Power", "{}"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /rpc: can't find method Arith\.Power/);
  },
});
