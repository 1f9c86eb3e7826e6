import assert from "node:assert/strict";
import {
  type JsonItem,
  JsonSyntaxError,
  JsonTooLargeError,
  JsonValueReader,
  type JsonValueReaderOptions,
} from "../lib/rpc/json_stream.ts";

const encoder = new TextEncoder();

/** Every way to cut `bytes` into two pieces, plus one byte at a time. */
function splits(bytes: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [[bytes], [...bytes].map((b) => Uint8Array.of(b))];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

/** Reads every item; syntax errors become `ERR: message`. */
async function collect(
  chunks: Uint8Array[] | string,
  options?: JsonValueReaderOptions,
): Promise<string[]> {
  const source = typeof chunks === "string" ? [encoder.encode(chunks)] : chunks;
  const items: JsonItem[] = [];
  for await (const item of new JsonValueReader(ReadableStream.from(source), options)) {
    items.push(item);
  }
  return items.map((item) => typeof item === "string" ? item : `ERR: ${item.message}`);
}

Deno.test("JsonValueReader splits back-to-back values however the bytes are cut", async () => {
  const text = '{"method":"A.B","params":[{"A":-7.5e+2,"B":"x\\"\\u00e9é\\n"}],"id":0}\n' +
    '[1,{"a":[]},{}]{"b":true}  "str" null false 12 -0.5E3\n[]';
  const want = [
    '{"method":"A.B","params":[{"A":-7.5e+2,"B":"x\\"\\u00e9é\\n"}],"id":0}',
    '[1,{"a":[]},{}]',
    '{"b":true}',
    '"str"',
    "null",
    "false",
    "12",
    "-0.5E3",
    "[]",
  ];
  for (const chunks of splits(encoder.encode(text))) assert.deepEqual(await collect(chunks), want);
});

Deno.test("JsonValueReader returns all values one read made available, in one batch", async () => {
  const reader = new JsonValueReader(
    ReadableStream.from([encoder.encode('{"a":1}\n{"b":2}\n{"c"')]),
  );
  assert.deepEqual(await reader.readValues(), ['{"a":1}', '{"b":2}']);
  const rest = await reader.readValues();
  assert.equal(rest?.length, 1);
  assert.ok(rest?.[0] instanceof JsonSyntaxError);
  assert.match(rest[0].message, /Unexpected end of input/);
  assert.equal(await reader.readValues(), null);
});

Deno.test("JsonValueReader reports a truncated line and reads the next line's value", async () => {
  const text = '{"method":"Arith.Multiply","params":[{"A":7\n{"id":1}\n' +
    '{"s":"cut\n{"id":2}\n' +
    'not json at all\n{"id":3}\n' +
    '{"a":1,}\n{"id":4}\n' +
    '12x\n[1 2]\n{"id":5}';
  for (const chunks of [[encoder.encode(text)], ...splits(encoder.encode(text)).slice(1, 40)]) {
    assert.deepEqual(await collect(chunks), [
      "ERR: Unexpected '{' where ',' or '}' should be",
      '{"id":1}',
      "ERR: Unescaped a newline inside a JSON string",
      '{"id":2}',
      "ERR: Unexpected 'o' inside \"null\"",
      '{"id":3}',
      "ERR: Unexpected '}' where a JSON key should be",
      '{"id":4}',
      "ERR: Unexpected 'x' after a number",
      "ERR: Unexpected '2' where ',' or ']' should be",
      '{"id":5}',
    ]);
  }
});

Deno.test("JsonValueReader rejects bad escapes, control bytes and bare words", async () => {
  assert.deepEqual(await collect('"\\x"\n"a\tb"\nundefined\n{"a" 1}\n-\n1.\n1e\n'), [
    "ERR: Invalid escape \\x in a JSON string",
    "ERR: Unescaped byte 0x09 inside a JSON string",
    "ERR: Unexpected 'u' where a JSON value should be",
    "ERR: Unexpected '1' where ':' should be",
    "ERR: Unexpected a newline after '-' in a number",
    "ERR: Unexpected a newline after '.' in a number",
    "ERR: Unexpected a newline in a number's exponent",
  ]);
});

Deno.test("JsonValueReader bounds nesting depth as a syntax error, and goes on", async () => {
  const deep = "[".repeat(100) + "]".repeat(100);
  assert.deepEqual(await collect(`${deep}\n[[1]]\n`, { maxDepth: 64 }), [
    "ERR: JSON nesting deeper than 64 levels",
    "[[1]]",
  ]);
});

Deno.test("JsonValueReader throws JsonTooLargeError for a value over the bound", async () => {
  const big = `{"a":"${"x".repeat(2000)}"}`;
  await assert.rejects(collect(big, { maxValueBytes: 1024 }), JsonTooLargeError);
  // The same bound, fed a byte at a time and unfinished.
  const chunks = [...encoder.encode(`[${"1,".repeat(600)}`)].map((b) => Uint8Array.of(b));
  await assert.rejects(collect(chunks, { maxValueBytes: 1024 }), /exceeds the limit of 1024/);
  // Whitespace and skipped lines between values are not buffered.
  const spaces = " ".repeat(5000) + "\n" + "bad".repeat(2000) + "\n{}";
  assert.deepEqual(await collect(spaces, { maxValueBytes: 1024 }), [
    "ERR: Unexpected 'b' where a JSON value should be",
    "{}",
  ]);
});

Deno.test("JsonValueReader keeps values up to the bound, across buffer growth", async () => {
  const value = `{"a":"${"é".repeat(40_000)}"}`;
  const bytes = encoder.encode(`${value}\n${value}`);
  const chunks = [];
  for (let i = 0; i < bytes.length; i += 1000) chunks.push(bytes.subarray(i, i + 1000));
  assert.deepEqual(await collect(chunks, { maxValueBytes: 80_010 }), [value, value]);
});

Deno.test("JsonValueReader ends a top-level number at end of stream", async () => {
  assert.deepEqual(await collect("1 2 3"), ["1", "2", "3"]);
  assert.deepEqual(await collect("  \n "), []);
  assert.deepEqual(await collect("tru"), ["ERR: Unexpected end of input inside a JSON value"]);
});
