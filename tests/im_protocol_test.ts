import assert from "node:assert/strict";
import {
  checkName,
  checkPassword,
  checkUserId,
  parseRequest,
  ProtocolError,
  quote,
  requestIdOf,
} from "../lib/im/im_protocol.ts";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof ProtocolError) return error.code;
    throw error;
  }
  return "ok";
}

Deno.test("parseRequest() returns checked requests with canonical user ids", () => {
  assert.deepEqual(
    parseRequest(`{"type":"register","id":"r1","user":"Alice.B-2","password":"12345678"}`),
    { type: "register", id: "r1", user: "alice.b-2", password: "12345678", name: "alice.b-2" },
  );
  assert.deepEqual(parseRequest(`{"type":"send","to":"BOB","text":"hi","from":"eve"}`), {
    type: "send",
    to: "bob",
    text: "hi",
  });
  assert.deepEqual(parseRequest(`{"type":"ping","id":7}`), { type: "ping", id: 7 });
});

Deno.test("parseRequest() names what is wrong with a stable code", () => {
  const cases: Array<[string, string]> = [
    ["{", "bad_json"],
    ["null", "bad_request"],
    [`"text"`, "bad_request"],
    [`{"type":"nope"}`, "unknown_type"],
    [`{"type":["login"]}`, "bad_request"],
    [`{"type":"login","user":"a"}`, "bad_request"],
    [`{"type":"login","user":"a b","password":"x"}`, "invalid_user"],
    [`{"type":"register","user":"a","password":"1234567"}`, "invalid_password"],
    [`{"type":"register","user":"a","password":"12345678","name":""}`, "invalid_name"],
    [`{"type":"send","to":"b","text":""}`, "bad_request"],
    [`{"type":"send","to":"b\\n","text":"x"}`, "unknown_user"],
    [`{"type":"broadcast","text":"${"x".repeat(9000)}"}`, "too_large"],
    [`{"type":"ping","id":"${"i".repeat(65)}"}`, "bad_request"],
  ];
  for (const [line, code] of cases) assert.equal(codeOf(() => parseRequest(line)), code, line);
  assert.equal(
    codeOf(() => parseRequest(`{"type":"broadcast","text":"ab"}`, { maxTextBytes: 1 })),
    "too_large",
  );
});

Deno.test("user ids, passwords and names are bounded as the protocol says", () => {
  assert.equal(checkUserId("A_b.c-9"), "a_b.c-9");
  assert.equal(checkUserId("x".repeat(32)), "x".repeat(32));
  for (const bad of ["", "x".repeat(33), "a b", "é", "a\u0000", "a/b"]) {
    assert.equal(codeOf(() => checkUserId(bad)), "invalid_user", JSON.stringify(bad));
  }
  assert.equal(checkPassword("😀".repeat(8)), "😀".repeat(8), "characters, not UTF-16 units");
  assert.equal(codeOf(() => checkPassword("😀".repeat(257))), "invalid_password");
  assert.equal(checkName("  Zoë  "), "Zoë");
  assert.equal(codeOf(() => checkName("a\u009bb")), "invalid_name");
});

Deno.test("quote() escapes control characters and shortens long values", () => {
  assert.equal(quote("a\u001b[0m\u202e"), `"a\\x1b[0m\\u202e"`);
  assert.equal(quote("x".repeat(100)), `"${"x".repeat(40)}"...`);
  assert.equal(requestIdOf(`{"type":"x","id":3}`), 3);
  assert.equal(requestIdOf(`not json`), undefined);
});
