import assert from "node:assert/strict";
import { parseHeaderPairs, parseHeaders } from "../lib/cli/headers.ts";
import { UsageError } from "../lib/cli/cli.ts";

Deno.test("parseHeaderPairs() splits at the first colon and trims, as curl reads -H", () => {
  assert.deepEqual(parseHeaderPairs(["X-A: 1", "x-b:two: parts ", "Empty:"]), [
    ["X-A", "1"],
    ["x-b", "two: parts"],
    ["Empty", ""],
  ]);
});

Deno.test("parseHeaderPairs() quotes a header without a name or with a bad one", () => {
  for (const bad of ["no colon", ": value", "Bad Name: x", "Ünï: x"]) {
    assert.throws(() => parseHeaderPairs([bad]), (error: Error) => {
      assert.ok(error instanceof UsageError);
      assert.equal(error.message, `Invalid -H "${bad}": expected "Name: value"`);
      return true;
    });
  }
});

Deno.test("parseHeaders() builds HTTP headers, repeats kept, Origin from its own option", () => {
  const headers = parseHeaders(["Accept: a", "Accept: b", "Origin: http://x"], "http://o");
  assert.equal(headers.get("accept"), "a, b");
  assert.equal(headers.get("origin"), "http://o");
  assert.throws(() => parseHeaders(["X: a\u0000b"]), /the value is not allowed in a header/);
});
