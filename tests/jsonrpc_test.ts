import assert from "node:assert/strict";
import {
  checkedInt,
  decodeReply,
  encodeRequest,
  INTERNAL_ERROR,
  INVALID_PARAMS,
  INVALID_REQUEST,
  METHOD_NOT_FOUND,
  PARSE_ERROR,
  RpcError,
  RpcRegistry,
  SERVER_ERROR,
} from "../lib/rpc/jsonrpc.ts";

function registry(): RpcRegistry {
  return new RpcRegistry({ maxBatch: 3 })
    .register("Arith.Multiply", { A: "int", B: "int" }, ({ A, B }) => checkedInt(A * B, "A*B"))
    .register("Echo.Later", { text: "string" }, async ({ text }) => {
      await Promise.resolve();
      return text;
    })
    .register("Fail.Plain", {}, () => {
      throw new Error("boom");
    })
    .register("Fail.Coded", {}, () => {
      throw new RpcError(-32001, "not today", { retry: true });
    })
    .register("Void.Nothing", {}, () => undefined);
}

/** Answers `request` (an object, serialized first) and parses the reply. */
async function ask(request: unknown, rpc = registry()): Promise<unknown> {
  const text = typeof request === "string" ? request : JSON.stringify(request);
  const reply = await rpc.answerText(text);
  return reply === null ? null : JSON.parse(reply);
}

Deno.test("RpcRegistry answers Go's dialect with {id, result, error}", async () => {
  assert.deepEqual(await ask({ method: "Arith.Multiply", params: [{ A: 7, B: 8 }], id: 0 }), {
    id: 0,
    result: 56,
    error: null,
  });
  // Field names match case-insensitively when no exact one does, as in Go.
  assert.deepEqual(await ask({ method: "Arith.Multiply", params: [{ a: 2, b: 3 }], id: 1 }), {
    id: 1,
    result: 6,
    error: null,
  });
  assert.deepEqual(await ask({ method: "Void.Nothing", params: [null], id: 2 }), {
    id: 2,
    result: null,
    error: null,
  });
});

Deno.test("RpcRegistry answers Go's dialect errors as strings, with Go's wording", async () => {
  const cases: Array<[unknown, string]> = [
    [{ method: "Arith.Divide", params: [{}], id: 1 }, "rpc: can't find method Arith.Divide"],
    [{ method: "Nope.Divide", params: [{}], id: 1 }, "rpc: can't find service Nope.Divide"],
    [
      { method: "Multiply", params: [{}], id: 1 },
      "rpc: service/method request ill-formed: Multiply",
    ],
    [{ method: "Arith.Multiply", id: 1 }, "jsonrpc: request body missing params"],
    [{ method: 5, params: [], id: 1 }, 'rpc: "method" must be a string, got 5'],
    [
      { method: "Arith.Multiply", params: { A: 1 }, id: 1 },
      "Invalid params: expected an array of one argument, got an object",
    ],
    [{ method: "Arith.Multiply", params: [{ A: 1 }], id: 1 }, 'missing param "B"'],
    [
      { method: "Arith.Multiply", params: [{ A: "7", B: 8 }], id: 1 },
      `param "A" must be an integer within ±${Number.MAX_SAFE_INTEGER}, got "7"`,
    ],
    [
      { method: "Arith.Multiply", params: [{ A: 7.5, B: 8 }], id: 1 },
      `param "A" must be an integer within ±${Number.MAX_SAFE_INTEGER}, got 7.5`,
    ],
    [
      { method: "Arith.Multiply", params: [{ A: 2 ** 53, B: 1 }], id: 1 },
      `param "A" must be an integer within ±${Number.MAX_SAFE_INTEGER}, got 9007199254740992`,
    ],
    [
      { method: "Arith.Multiply", params: [{ A: 2 ** 30, B: 2 ** 30 }], id: 1 },
      "Integer overflow: A*B exceeds Number.MAX_SAFE_INTEGER (9007199254740991)",
    ],
    [{ method: "Fail.Plain", params: [{}], id: 1 }, "boom"],
  ];
  for (const [request, error] of cases) {
    assert.deepEqual(await ask(request), { id: 1, result: null, error }, JSON.stringify(request));
  }
});

Deno.test("RpcRegistry answers JSON-RPC 2.0 with named or positional params", async () => {
  const v2 = (params: unknown, id: unknown = 1) => ({
    jsonrpc: "2.0",
    method: "Arith.Multiply",
    params,
    id,
  });
  assert.deepEqual(await ask(v2({ A: 3, B: 4 })), { jsonrpc: "2.0", id: 1, result: 12 });
  assert.deepEqual(await ask(v2([3, 4], "a")), { jsonrpc: "2.0", id: "a", result: 12 });
  assert.deepEqual(await ask(v2([{ A: 3, B: 5 }], null)), { jsonrpc: "2.0", id: null, result: 15 });
  assert.deepEqual(
    await ask({ jsonrpc: "2.0", method: "Echo.Later", params: ["hi"], id: 9 }),
    { jsonrpc: "2.0", id: 9, result: "hi" },
  );
});

Deno.test("RpcRegistry gives JSON-RPC 2.0 errors their standard codes", async () => {
  const code = async (request: unknown) => {
    const reply = await ask(request) as { error: { code: number; message: string } };
    return [reply.error.code, reply.error.message];
  };
  const call = { jsonrpc: "2.0", method: "Arith.Multiply", id: 1 };
  assert.deepEqual(await code("{"), [
    PARSE_ERROR,
    "Parse error: Expected property name or '}' in JSON at position 1 (line 1 column 2)",
  ]);
  assert.deepEqual(await code(42), [
    INVALID_REQUEST,
    "Invalid Request: expected an object, got a number",
  ]);
  assert.deepEqual(await code({ ...call, jsonrpc: "1.0" }), [
    INVALID_REQUEST,
    'Invalid Request: "jsonrpc" must be "2.0"',
  ]);
  assert.deepEqual(await code({ ...call, method: 1 }), [
    INVALID_REQUEST,
    'Invalid Request: "method" must be a string',
  ]);
  assert.deepEqual(await code({ ...call, params: 5 }), [
    INVALID_REQUEST,
    'Invalid Request: "params" must be an object or an array',
  ]);
  assert.deepEqual(await code({ ...call, id: { x: 1 } }), [
    INVALID_REQUEST,
    'Invalid Request: "id" must be a string, a number or null',
  ]);
  assert.deepEqual(await code({ ...call, method: "Arith.Divide" }), [
    METHOD_NOT_FOUND,
    'Method not found: "Arith.Divide"',
  ]);
  assert.deepEqual(await code({ ...call, params: [1, 2, 3] }), [
    INVALID_PARAMS,
    "Invalid params: expected 2 params (A, B), got 3",
  ]);
  assert.deepEqual(await code({ ...call, params: { A: 1, B: true } }), [
    INVALID_PARAMS,
    `Invalid params: param "B" must be an integer within ±${Number.MAX_SAFE_INTEGER}, got true`,
  ]);
  assert.deepEqual(await code({ ...call, params: [2 ** 40, 2 ** 40] }), [
    SERVER_ERROR,
    "Integer overflow: A*B exceeds Number.MAX_SAFE_INTEGER (9007199254740991)",
  ]);
  assert.deepEqual(await code({ ...call, method: "Fail.Plain" }), [
    INTERNAL_ERROR,
    "Internal error: boom",
  ]);
  assert.deepEqual(await ask({ ...call, method: "Fail.Coded" }), {
    jsonrpc: "2.0",
    id: 1,
    error: { code: -32001, message: "not today", data: { retry: true } },
  });
});

Deno.test("RpcRegistry answers batches, skips notifications, bounds batch size", async () => {
  const batch = [
    { jsonrpc: "2.0", method: "Arith.Multiply", params: [2, 3], id: 1 },
    { jsonrpc: "2.0", method: "Arith.Multiply", params: [2, 3] }, // notification
    { method: "Arith.Multiply", params: [{ A: 1, B: 1 }], id: 3 }, // no "jsonrpc" in a batch
  ];
  assert.deepEqual(await ask(batch), [
    { jsonrpc: "2.0", id: 1, result: 6 },
    {
      jsonrpc: "2.0",
      id: 3,
      error: { code: INVALID_REQUEST, message: 'Invalid Request: "jsonrpc" must be "2.0"' },
    },
  ]);
  // Notifications get nothing back, errors included; a batch of them too.
  const note = { jsonrpc: "2.0", method: "Nope.Nope" };
  assert.equal(await ask(note), null);
  assert.equal(await ask([note, { ...note, method: "Arith.Multiply", params: ["x"] }]), null);
  assert.deepEqual(await ask([]), {
    jsonrpc: "2.0",
    id: null,
    error: { code: INVALID_REQUEST, message: "Invalid Request: empty batch" },
  });
  assert.deepEqual(await ask([1, 2, 3, 4]), {
    jsonrpc: "2.0",
    id: null,
    error: {
      code: INVALID_REQUEST,
      message: "Invalid Request: batch of 4 requests exceeds the limit of 3",
    },
  });
  assert.deepEqual(await ask([1]), [{
    jsonrpc: "2.0",
    id: null,
    error: { code: INVALID_REQUEST, message: "Invalid Request: expected an object, got a number" },
  }]);
});

Deno.test("RpcRegistry echoes ids beyond 2^53 digit for digit", async () => {
  const rpc = registry();
  const id = "18446744073709551615";
  assert.equal(
    await rpc.answerText(`{"method":"Arith.Multiply","params":[{"A":1,"B":2}],"id":${id}}`),
    `{"id":${id},"result":2,"error":null}`,
  );
  assert.equal(
    await rpc.answerText(`[{"jsonrpc":"2.0","method":"Arith.Multiply","params":[1,2],"id":${id}}]`),
    `[{"jsonrpc":"2.0","id":${id},"result":2}]`,
  );
});

Deno.test("RpcRegistry.register adds a method in one line and refuses duplicates", async () => {
  const rpc = new RpcRegistry().register("Str.Upper", { s: "string" }, ({ s }) => s.toUpperCase());
  assert.deepEqual(await ask({ method: "Str.Upper", params: [{ s: "go" }], id: 1 }, rpc), {
    id: 1,
    result: "GO",
    error: null,
  });
  assert.deepEqual(rpc.names, ["Str.Upper"]);
  assert.throws(() => rpc.register("Str.Upper", {}, () => 1), /already registered/);
});

Deno.test("encodeRequest and decodeReply speak both dialects", () => {
  assert.equal(
    encodeRequest("go", "Arith.Multiply", { A: 7, B: 8 }, 1),
    '{"method":"Arith.Multiply","params":[{"A":7,"B":8}],"id":1}',
  );
  assert.equal(
    encodeRequest("2.0", "Algorithm.Sum", [3, 4], 2),
    '{"jsonrpc":"2.0","method":"Algorithm.Sum","params":[3,4],"id":2}',
  );
  assert.deepEqual(decodeReply({ id: 1, result: 56, error: null }), { id: 1, result: 56 });
  const goError = decodeReply({ id: 1, result: null, error: "rpc: can't find method X.Y" });
  assert.equal(goError.error?.message, "rpc: can't find method X.Y");
  assert.equal(goError.error?.code, 0);
  const v2Error = decodeReply({ jsonrpc: "2.0", id: 1, error: { code: -32601, message: "no" } });
  assert.equal(v2Error.error?.code, -32601);
  assert.throws(() => decodeReply([1]), SyntaxError);
  assert.throws(() => decodeReply({ id: 1 }), /Reply without result/);
});
