import assert from "node:assert/strict";
import { buildGoFixture } from "./go_fixtures.ts";
import { missingPeer } from "./helpers.ts";
import {
  GobDecoder,
  GobEncoder,
  GobError,
  GobReader,
  type GobSchema,
  type GobValue,
  MAX_GOB_TYPES,
} from "../lib/rpc/gob.ts";
import { gobToJson } from "../lib/rpc/gob_rpc.ts";

/** A reader over `bytes`, handing them out `chunk` bytes at a time. */
function bytesReader(bytes: Uint8Array, chunk = bytes.length || 1) {
  let pos = 0;
  return {
    read(p: Uint8Array): Promise<number | null> {
      if (pos >= bytes.length) return Promise.resolve(null);
      const n = Math.min(p.length, chunk, bytes.length - pos);
      p.set(bytes.subarray(pos, pos + n));
      pos += n;
      return Promise.resolve(n);
    },
  };
}

/** Decodes a whole gob stream: every value, in order. */
async function decodeAll(bytes: Uint8Array, chunk?: number): Promise<GobValue[]> {
  const reader = new GobReader(bytesReader(bytes, chunk));
  const decoder = new GobDecoder();
  const values: GobValue[] = [];
  for (let m = await reader.next(); m !== null; m = await reader.next()) {
    const decoded = decoder.decode(m);
    if (decoded.kind === "value") values.push(decoded.value);
  }
  return values;
}

function fromHex(hex: string): Uint8Array {
  return new Uint8Array(hex.match(/../g)!.map((b) => parseInt(b, 16)));
}

function toHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** JSON parsed with numbers kept as their text (exact past 2^53) and nulls dropped, as Go's nil pointers. */
function canonical(text: string): unknown {
  return JSON.parse(
    text,
    (_key, value, context?: { source?: string }) =>
      value === null ? undefined : typeof value === "number" ? context?.source : value,
  );
}

const REFUSED: Record<string, RegExp> = {
  chain100: /nested deeper than 64/,
  any: /Cannot decode gob interface values/,
  complex: /Cannot decode gob complex numbers/,
  time: /marshalled by its own methods/,
};

async function goEncoded(): Promise<Map<string, { bytes: Uint8Array; json: string }>> {
  await using binary = await buildGoFixture("go_gob");
  const { code, stdout, stderr } = await new Deno.Command(binary.path, { args: ["encode"] })
    .output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const cases = new Map<string, { bytes: Uint8Array; json: string }>();
  for (const line of new TextDecoder().decode(stdout).trim().split("\n")) {
    const [name, hex, ...json] = line.split(" ");
    cases.set(name, { bytes: fromHex(hex), json: json.join(" ") });
  }
  return cases;
}

Deno.test({
  name: "GobDecoder decodes what Go's encoder writes, every type, split every way",
  ignore: missingPeer("go"),
  async fn() {
    const cases = await goEncoded();
    assert.ok(cases.size >= 20, `only ${cases.size} cases`);
    for (const [name, { bytes, json }] of cases) {
      if (name in REFUSED) {
        await assert.rejects(decodeAll(bytes), (e: Error) => {
          assert.ok(e instanceof GobError, `${name}: ${e}`);
          assert.match(e.message, REFUSED[name], name);
          return true;
        });
        continue;
      }
      const [value] = await decodeAll(bytes);
      assert.deepEqual(canonical(JSON.stringify(gobToJson(value))), canonical(json), name);
      // The same bytes a byte at a time, and cut short anywhere: an error,
      // or, cut between messages, no value.
      assert.deepEqual(await decodeAll(bytes, 1), [value], `${name} byte by byte`);
      for (let cut = 1; cut < bytes.length; cut++) {
        const got = await decodeAll(bytes.subarray(0, cut)).catch((e) => e);
        if (Array.isArray(got)) assert.deepEqual(got, [], `${name} cut at ${cut}`);
        else assert.ok(got instanceof GobError, `${name} cut at ${cut}: ${got}`);
      }
    }
    // Values past 2^53 stay exact.
    assert.equal((await decodeAll(cases.get("intMin")!.bytes))[0], -(2n ** 63n));
    assert.equal((await decodeAll(cases.get("uintMax")!.bytes))[0], 2n ** 64n - 1n);
  },
});

const INNER: GobSchema = { struct: "Inner", fields: [["Name", "string"], ["N", "int"]] };

/** Values netkit encodes for the Go program to decode, by the Go case they decode into. */
const ENCODED: [string, GobSchema, unknown][] = [
  ["int", "int", -123456],
  ["intZero", "int", 0],
  ["intMax", "int", 2n ** 63n - 1n],
  ["intMin", "int", -(2n ** 63n)],
  ["uintMax", "uint", 2n ** 64n - 1n],
  ["float", "float", 3.25],
  ["floatNeg", "float", -1e300],
  ["floatFrac", "float", 0.1],
  ["boolTrue", "bool", true],
  ["string", "string", "héllo, 世界"],
  ["bytes", "bytes", new Uint8Array([0, 1, 255])],
  ["ints", { slice: "int" }, [1, -2, 300]],
  ["strings", { slice: "string" }, ["a", "", "c"]],
  ["array", { array: "int", len: 3 }, [1, 2, 3]],
  ["map", { map: ["string", "int"] }, new Map([["a", 1], ["b", -2]])],
  ["mapIntKeys", { map: ["int", "string"] }, new Map([[7, "seven"]])],
  ["args", { struct: "Args", fields: [["A", "int"], ["B", "int"]] }, { A: 7, B: 8 }],
  ["outer", {
    struct: "Outer",
    fields: [
      ["Name", "string"],
      ["In", INNER],
      ["List", { slice: INNER }],
      ["M", { map: ["string", INNER] }],
      ["F", "float"],
      ["Ok", "bool"],
      ["Data", "bytes"],
      ["U", "uint"],
      ["Arr", { array: "int", len: 3 }],
      ["Zero", "int"],
      ["Empty", "string"],
    ],
  }, {
    Name: "out",
    In: { Name: "in", N: 1 },
    List: [{ Name: "x", N: 2 }, { Name: "y", N: 0 }],
    M: new Map([["k", { Name: "v", N: 3 }]]),
    F: 2.5,
    Ok: true,
    Data: new TextEncoder().encode("hi"),
    U: 200,
    Arr: [-1, 0, 1],
    Zero: 0,
    Empty: "",
  }],
];

Deno.test({
  name: "GobEncoder writes what Go's decoder reads, every type",
  ignore: missingPeer("go"),
  async fn() {
    await using binary = await buildGoFixture("go_gob");
    const lines = ENCODED.map(([name, schema, value]) =>
      `${name} ${toHex(new GobEncoder().encode(schema, value))}\n`
    );
    const child = new Deno.Command(binary.path, {
      args: ["decode"],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(lines.join("")));
    await writer.close();
    const out = new TextDecoder().decode((await child.output()).stdout).trim().split("\n");
    assert.equal(out.length, ENCODED.length);
    ENCODED.forEach(([name, , value], i) => {
      const [got, ...json] = out[i].split(" ");
      assert.equal(got, name);
      const text = json.join(" ");
      assert.doesNotMatch(text, /^error:/, `${name}: ${text}`);
      assert.deepEqual(
        canonical(text),
        canonical(JSON.stringify(gobToJson(value as GobValue))),
        name,
      );
    });
  },
});

Deno.test("GobEncoder and GobDecoder round-trip a stream, sending each type once", async () => {
  const encoder = new GobEncoder();
  const schema: GobSchema = { struct: "P", fields: [["X", "int"], ["Tags", { slice: "string" }]] };
  const first = encoder.encode(schema, { X: 1, Tags: ["a"] });
  const second = encoder.encode(schema, { X: -2, Tags: [] });
  assert.ok(second.length < first.length, "the type definition is not sent again");
  const stream = new Uint8Array([...first, ...second]);
  assert.deepEqual(await decodeAll(stream), [{ X: 1, Tags: ["a"] }, { X: -2, Tags: [] }]);
  assert.throws(() => encoder.encode("int", "7"), /Cannot encode "7" as int/);
  assert.throws(() => encoder.encode({ array: "int", len: 2 }, [1]), /Cannot encode 1 elements/);
});

Deno.test("GobReader and GobDecoder refuse hostile input at once, within bounds", async () => {
  const decode = (bytes: number[]) => decodeAll(new Uint8Array(bytes));
  // A length of 2^64-1: refused before any byte of it is awaited or kept.
  await assert.rejects(decode([0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), /exceeds/);
  await assert.rejects(decode([0xf0]), /Invalid gob message length prefix/);
  // A value of a type never defined (id 100, as int 200).
  await assert.rejects(decode([4, 0xff, 0xc8, 0, 0]), /Unknown gob type id 100/);
  // A slice claiming 2^32 elements in a 9-byte message.
  const ints = new GobEncoder().encode({ slice: "int" }, [1]);
  const definition = ints.subarray(0, ints[0] + 1);
  const id = ints.subarray(ints[0] + 2, ints[0] + 4); // the value message's type id
  await assert.rejects(
    decodeAll(new Uint8Array([...definition, 9, ...id, 0, 0xfb, 1, 0, 0, 0, 0])),
    /Invalid gob \[\]int length: 4294967296 exceeds/,
  );
  // The same type defined twice.
  await assert.rejects(
    decodeAll(new Uint8Array([...definition, ...definition])),
    /defined twice/,
  );
  // Endless type definitions stop at the bound.
  const many: number[] = [];
  const encoder = new GobEncoder();
  for (let i = 0; i <= MAX_GOB_TYPES; i++) {
    const bytes = encoder.encode({ struct: `T${i}`, fields: [["X", "int"]] }, { X: 1 });
    many.push(...bytes.subarray(0, bytes[0] + 1)); // the definition, a message under 128 bytes
  }
  await assert.rejects(decode(many), /Too many gob type definitions/);
});
