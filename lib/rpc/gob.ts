/**
 * Go's gob encoding, the part `net/rpc` uses between Go programs: type
 * definitions (wireType), structs, ints, uints, floats, bools, strings,
 * bytes, slices, arrays and maps (Go flattens pointers, so they need
 * nothing more). Interfaces, complex numbers and GobEncoder types are
 * refused with a {@link GobError}, as is anything hostile: lengths past the
 * message, nesting past {@link MAX_GOB_DEPTH}, unknown or redefined type ids.
 *
 * {@link GobEncoder} and {@link GobDecoder} each hold one direction of a
 * stream's type table; messages are framed by `GobReader` (gob_wire.ts).
 *
 * @module
 */
import { concat, fail, frame, In, Out } from "./gob_wire.ts";

export { DEFAULT_MAX_GOB_MESSAGE, GobError, GobReader, type GobReaderOptions } from "./gob_wire.ts";

/** Deepest nesting of values (and of type definitions) decoded: far beyond real data. */
export const MAX_GOB_DEPTH = 64;
/** Most type definitions one stream may send; Go programs send a handful. */
export const MAX_GOB_TYPES = 1024;

// Go's predefined type ids (encoding/gob/type.go); user types start at 65.
const BOOL = 1, INT = 2, UINT = 3, FLOAT = 4, BYTES = 5, STRING = 6, COMPLEX = 7, INTERFACE = 8;
const FIRST_USER_ID = 65;
/** Basic types' zero values need no guard against recursion. */
const NO_IDS: Set<number> = new Set();
const BASIC_NAMES = ["", "bool", "int", "uint", "float", "bytes", "string", "complex", "interface"];

/** How a value is described to the encoder, as Go types are: basic kinds or composites. */
export type GobSchema =
  | "bool"
  | "int"
  | "uint"
  | "float"
  | "string"
  | "bytes"
  | { struct: string; fields: readonly (readonly [string, GobSchema])[] }
  | { slice: GobSchema }
  | { array: GobSchema; len: number }
  | { map: readonly [GobSchema, GobSchema] };

/** A decoded value: number (bigint past 2^53), boolean, string, Uint8Array, array, Map or object. */
export type GobValue =
  | number
  | bigint
  | boolean
  | string
  | Uint8Array
  | GobValue[]
  | Map<GobValue, GobValue>
  | { [field: string]: GobValue };

/** A type as the wire defines it (the decoder's view). */
type WireType =
  | { kind: "struct"; name: string; fields: { name: string; id: number }[] }
  | { kind: "slice"; name: string; elem: number }
  | { kind: "array"; name: string; elem: number; len: number }
  | { kind: "map"; name: string; key: number; elem: number }
  | { kind: "unsupported"; name: string; why: string };

// ---------------------------------------------------------------- encoder

const BASIC_IDS: Record<string, number> = {
  bool: BOOL,
  int: INT,
  uint: UINT,
  float: FLOAT,
  bytes: BYTES,
  string: STRING,
};

/** Go's name for a type, used in type definitions (only read by people). */
function goName(schema: GobSchema): string {
  if (typeof schema === "string") {
    return schema === "float" ? "float64" : schema === "bytes" ? "[]uint8" : schema;
  }
  if ("struct" in schema) return schema.struct;
  if ("slice" in schema) return `[]${goName(schema.slice)}`;
  if ("array" in schema) return `[${schema.len}]${goName(schema.array)}`;
  return `map[${goName(schema.map[0])}]${goName(schema.map[1])}`;
}

/**
 * The sending half of a gob stream: it numbers types as Go does (from 65),
 * sends each definition once, before the first value that needs it.
 */
export class GobEncoder {
  #ids = new Map<string, number>();
  /** The same, by schema object: most values reuse one schema object, and stringifying costs. */
  #byObject = new WeakMap<object, number>();
  #nextId = FIRST_USER_ID;

  /** The messages for `value` of type `schema`: new type definitions, then the value. */
  encode(schema: GobSchema, value: unknown): Uint8Array {
    const defs: Uint8Array[] = [];
    const id = this.#typeId(schema, defs);
    const out = new Out();
    out.int(id);
    if (typeof schema === "object" && "struct" in schema) {
      this.#struct(out, schema, value);
    } else {
      out.uint(0); // a non-struct value travels as a struct's field 0
      this.#value(out, schema, value);
    }
    defs.push(frame(out.take()));
    return concat(defs);
  }

  #typeId(schema: GobSchema, defs: Uint8Array[]): number {
    if (typeof schema === "string") return BASIC_IDS[schema];
    const same = this.#byObject.get(schema);
    if (same !== undefined) return same;
    const key = JSON.stringify(schema);
    const known = this.#ids.get(key);
    if (known !== undefined) {
      this.#byObject.set(schema, known);
      return known;
    }
    const id = this.#nextId++;
    this.#ids.set(key, id); // before the parts, so a part may name it
    this.#byObject.set(schema, id);
    const common = (out: Out) => {
      out.uint(1); // CommonType
      out.uint(1);
      out.string(goName(schema));
      out.uint(1);
      out.int(id);
      out.uint(0);
    };
    const out = new Out();
    out.int(-id);
    if ("struct" in schema) {
      const fieldIds = schema.fields.map(([, s]) => this.#typeId(s, defs));
      out.uint(3); // wireType.StructT
      common(out);
      out.uint(1); // structType.Field
      out.uint(schema.fields.length);
      schema.fields.forEach(([name], i) => {
        out.uint(1);
        out.string(name);
        out.uint(1);
        out.int(fieldIds[i]);
        out.uint(0);
      });
      out.uint(0);
    } else if ("slice" in schema) {
      const elem = this.#typeId(schema.slice, defs);
      out.uint(2); // wireType.SliceT
      common(out);
      out.uint(1);
      out.int(elem);
      out.uint(0);
    } else if ("array" in schema) {
      const elem = this.#typeId(schema.array, defs);
      out.uint(1); // wireType.ArrayT
      common(out);
      out.uint(1);
      out.int(elem);
      out.uint(1);
      out.int(schema.len);
      out.uint(0);
    } else {
      const key = this.#typeId(schema.map[0], defs);
      const elem = this.#typeId(schema.map[1], defs);
      out.uint(4); // wireType.MapT
      common(out);
      out.uint(1);
      out.int(key);
      out.uint(1);
      out.int(elem);
      out.uint(0);
    }
    out.uint(0);
    defs.push(frame(out.take()));
    return id;
  }

  /** A struct: (field delta, value) for every non-zero field, then 0. */
  #struct(
    out: Out,
    schema: { struct: string; fields: readonly (readonly [string, GobSchema])[] },
    value: unknown,
  ): void {
    if (typeof value !== "object" || value === null) {
      fail(`Cannot encode ${show(value)} as struct ${schema.struct}`);
    }
    const record = value as Record<string, unknown>;
    let last = -1;
    schema.fields.forEach(([name, fieldSchema], i) => {
      const field = record[name];
      if (isZero(fieldSchema, field)) return;
      out.uint(i - last);
      last = i;
      this.#value(out, fieldSchema, field);
    });
    out.uint(0);
  }

  #value(out: Out, schema: GobSchema, value: unknown): void {
    switch (schema) {
      case "bool":
        if (typeof value !== "boolean") fail(`Cannot encode ${show(value)} as bool`);
        return out.uint(value ? 1 : 0);
      case "int":
        if (!isInteger(value)) fail(`Cannot encode ${show(value)} as int`);
        return out.int(value);
      case "uint":
        if (!isInteger(value) || value < 0) fail(`Cannot encode ${show(value)} as uint`);
        return out.uint(value);
      case "float":
        if (typeof value !== "number") fail(`Cannot encode ${show(value)} as float64`);
        return out.float(value);
      case "string":
        if (typeof value !== "string") fail(`Cannot encode ${show(value)} as string`);
        return out.string(value);
      case "bytes":
        if (!(value instanceof Uint8Array)) fail(`Cannot encode ${show(value)} as []byte`);
        out.uint(value.length);
        return out.bytes(value);
    }
    if ("struct" in schema) return this.#struct(out, schema, value);
    if ("map" in schema) {
      const entries = value instanceof Map
        ? [...value.entries()]
        : typeof value === "object" && value !== null
        ? Object.entries(value)
        : fail(`Cannot encode ${show(value)} as ${goName(schema)}`);
      out.uint(entries.length);
      for (const [k, v] of entries) {
        this.#value(out, schema.map[0], k);
        this.#value(out, schema.map[1], v);
      }
      return;
    }
    if (!Array.isArray(value)) fail(`Cannot encode ${show(value)} as ${goName(schema)}`);
    const elem = "slice" in schema ? schema.slice : schema.array;
    if ("array" in schema && value.length !== schema.len) {
      fail(`Cannot encode ${value.length} elements as ${goName(schema)}`);
    }
    out.uint(value.length);
    for (const item of value) this.#value(out, elem, item);
  }
}

function isInteger(value: unknown): value is number | bigint {
  return typeof value === "bigint" || Number.isSafeInteger(value);
}

/** Whether Go would leave this struct field out (its zero value; structs are always sent). */
function isZero(schema: GobSchema, value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (typeof schema === "object") {
    if ("struct" in schema || "array" in schema) return false;
    if ("map" in schema) return value instanceof Map ? value.size === 0 : false;
    return Array.isArray(value) && value.length === 0;
  }
  if (schema === "bytes") return value instanceof Uint8Array && value.length === 0;
  return value === 0 || value === 0n || value === false || value === "";
}

/**
 * The schema Go would use for a plain value: safe integers as int, other
 * numbers as float64, objects as structs (named `name`), arrays as slices
 * of their first element's type.
 */
export function schemaOf(value: unknown, name = "Reply"): GobSchema {
  if (typeof value === "boolean") return "bool";
  if (typeof value === "bigint" || Number.isSafeInteger(value)) return "int";
  if (typeof value === "number") return "float";
  if (typeof value === "string") return "string";
  if (value instanceof Uint8Array) return "bytes";
  if (Array.isArray(value)) return { slice: schemaOf(value[0] ?? 0, name) };
  if (typeof value === "object" && value !== null && !(value instanceof Map)) {
    return {
      struct: name,
      fields: Object.entries(value).map(([k, v]) => [k, schemaOf(v, k)] as const),
    };
  }
  return fail(`Cannot encode ${show(value)} in gob`);
}

// ---------------------------------------------------------------- decoder

/**
 * The type id a message starts with: negative for a type definition.
 * Throws {@link GobError} if there is none.
 */
export function messageTypeId(message: Uint8Array): number {
  const id = new In(message).int();
  if (typeof id === "bigint") fail(`Invalid gob type id ${id}`);
  return id;
}

/** A decoded message: a type definition (nothing to return) or a value with its type's name. */
export type GobMessage =
  | { kind: "type"; id: number }
  | { kind: "value"; id: number; type: string; value: GobValue };

/** The receiving half of a gob stream: its type table and the decoding of values. */
export class GobDecoder {
  #types = new Map<number, WireType>();

  /** Decodes one message (without its length prefix). Throws {@link GobError}. */
  decode(message: Uint8Array): GobMessage {
    const r = new In(message);
    const id = r.int();
    if (typeof id === "bigint") fail(`Invalid gob type id ${id}`);
    if (id < 0) {
      this.#define(-id, r);
      return { kind: "type", id: -id };
    }
    const isStruct = this.#types.get(id)?.kind === "struct";
    if (!isStruct && r.uint() !== 0) fail("Corrupted gob: non-zero delta for a singleton");
    const value = this.#value(id, r, 0);
    if (r.left > 0) fail(`Corrupted gob: ${r.left} bytes left after a value`);
    return { kind: "value", id, type: this.typeName(id), value };
  }

  /** The name a type id was defined with, or Go's spelling of an unnamed type (`[]int`). */
  typeName(id: number, depth = 0): string {
    const basic = BASIC_NAMES[id];
    if (basic) return basic;
    const type = this.#types.get(id);
    if (!type) return `type ${id}`;
    if (type.name !== "" || depth > 8) return type.name || "...";
    switch (type.kind) {
      case "slice":
        return `[]${this.typeName(type.elem, depth + 1)}`;
      case "array":
        return `[${type.len}]${this.typeName(type.elem, depth + 1)}`;
      case "map":
        return `map[${this.typeName(type.key, depth + 1)}]${this.typeName(type.elem, depth + 1)}`;
    }
    return `type ${id}`;
  }

  #define(id: number, r: In): void {
    if (id < FIRST_USER_ID) fail(`Invalid gob type definition: id ${id} is predefined`);
    if (this.#types.has(id)) fail(`Invalid gob type definition: id ${id} defined twice`);
    if (this.#types.size >= MAX_GOB_TYPES) {
      fail(`Too many gob type definitions: more than ${MAX_GOB_TYPES}`);
    }
    let type: WireType | undefined;
    let field = -1;
    for (let delta = r.count("field delta"); delta !== 0; delta = r.count("field delta")) {
      field += delta;
      if (type) fail("Invalid gob type definition: more than one kind");
      switch (field) {
        case 0:
          type = readStruct(r, (c, s) => {
            const t = { kind: "array" as const, name: c.name, elem: 0, len: 0 };
            s.field(1, () => t.elem = typeIdOf(r));
            s.field(2, () => {
              const len = r.int();
              if (typeof len === "bigint" || len < 0) fail(`Invalid gob array length ${len}`);
              t.len = len;
            });
            return t;
          });
          break;
        case 1:
          type = readStruct(r, (c, s) => {
            const t = { kind: "slice" as const, name: c.name, elem: 0 };
            s.field(1, () => t.elem = typeIdOf(r));
            return t;
          });
          break;
        case 2:
          type = readStruct(r, (c, s) => {
            const fields: { name: string; id: number }[] = [];
            s.field(1, () => {
              const n = r.count("field count");
              for (let i = 0; i < n; i++) {
                const f = { name: "", id: 0 };
                readFields(r, { 1: () => f.name = r.string(), 2: () => f.id = typeIdOf(r) });
                fields.push(f);
              }
            });
            return { kind: "struct" as const, name: c.name, fields };
          });
          break;
        case 3:
          type = readStruct(r, (c, s) => {
            const t = { kind: "map" as const, name: c.name, key: 0, elem: 0 };
            s.field(1, () => t.key = typeIdOf(r));
            s.field(2, () => t.elem = typeIdOf(r));
            return t;
          });
          break;
        case 4:
        case 5:
        case 6: {
          const t = readStruct(r, (c) => ({ kind: "unsupported" as const, name: c.name, why: "" }));
          t.why = `type ${t.name} is marshalled by its own methods (GobEncoder or Marshaler)`;
          type = t;
          break;
        }
        default:
          fail(`Invalid gob type definition: unknown wireType field ${field}`);
      }
    }
    if (!type) fail(`Invalid gob type definition: id ${id} has no kind`);
    if (r.left > 0) fail(`Corrupted gob: ${r.left} bytes left after a type definition`);
    this.#types.set(id, type);
  }

  #value(id: number, r: In, depth: number): GobValue {
    if (depth > MAX_GOB_DEPTH) fail(`Gob value nested deeper than ${MAX_GOB_DEPTH}`);
    switch (id) {
      case BOOL: {
        const v = r.uint();
        if (v !== 0 && v !== 1) fail(`Invalid gob bool ${v}`);
        return v === 1;
      }
      case INT:
        return r.int();
      case UINT:
        return r.uint();
      case FLOAT:
        return r.float();
      case BYTES:
        return r.bytes();
      case STRING:
        return r.string();
      case COMPLEX:
        return fail("Cannot decode gob complex numbers");
      case INTERFACE:
        return fail("Cannot decode gob interface values");
    }
    const type = this.#types.get(id);
    if (!type) fail(`Unknown gob type id ${id}`);
    switch (type.kind) {
      case "unsupported":
        return fail(`Cannot decode gob ${type.why}`);
      case "struct": {
        const out: { [field: string]: GobValue } = {};
        for (const f of type.fields) {
          const zero = this.#zero(f.id, f.id <= STRING ? NO_IDS : new Set([id]));
          if (zero !== undefined) out[f.name] = zero;
        }
        let field = -1;
        for (let delta = r.count("field delta"); delta !== 0; delta = r.count("field delta")) {
          field += delta;
          const f = type.fields[field];
          if (!f) fail(`Invalid gob field ${field} of ${this.typeName(id)}`);
          out[f.name] = this.#value(f.id, r, depth + 1);
        }
        return out;
      }
      case "slice":
      case "array": {
        const n = r.count(`${this.typeName(id)} length`);
        if (type.kind === "array" && n !== type.len) {
          fail(`Invalid gob ${this.typeName(id)}: ${n} elements`);
        }
        const out: GobValue[] = [];
        for (let i = 0; i < n; i++) out.push(this.#value(type.elem, r, depth + 1));
        return out;
      }
      case "map": {
        const n = r.count(`${this.typeName(id)} length`);
        const out = new Map<GobValue, GobValue>();
        for (let i = 0; i < n; i++) {
          const k = this.#value(type.key, r, depth + 1);
          out.set(k, this.#value(type.elem, r, depth + 1));
        }
        return out;
      }
    }
  }

  /**
   * The value Go leaves in a field the sender did not send; a struct field
   * whose type is already being filled (a recursive type, necessarily a
   * pointer in Go) is left out, as Go leaves it nil.
   */
  #zero(id: number, filling: Set<number> = new Set()): GobValue | undefined {
    switch (id) {
      case BOOL:
        return false;
      case INT:
      case UINT:
      case FLOAT:
        return 0;
      case BYTES:
        return new Uint8Array();
      case STRING:
        return "";
    }
    const type = this.#types.get(id);
    if (type?.kind === "struct") {
      if (filling.has(id) || filling.size >= MAX_GOB_DEPTH) return undefined;
      filling.add(id);
      const out: { [field: string]: GobValue } = {};
      for (const f of type.fields) {
        const zero = this.#zero(f.id, filling);
        if (zero !== undefined) out[f.name] = zero;
      }
      filling.delete(id);
      return out;
    }
    if (type?.kind === "map") return new Map();
    return [];
  }
}

function typeIdOf(r: In): number {
  const id = r.int();
  if (typeof id === "bigint" || id <= 0 || id > 0x7fffffff) fail(`Invalid gob type id ${id}`);
  return id;
}

/** Reads a struct's fields by number (1-based, as deltas count), each with its reader. */
function readFields(r: In, readers: Record<number, () => void>): void {
  let field = 0;
  for (let delta = r.count("field delta"); delta !== 0; delta = r.count("field delta")) {
    field += delta;
    const read = readers[field];
    if (!read) fail(`Invalid gob type definition: unexpected field ${field}`);
    read();
  }
}

interface Common {
  name: string;
  id: number;
}

/** Reads one of wireType's structs: its CommonType (field 1) and the fields `body` asks for. */
function readStruct<T>(
  r: In,
  body: (common: Common, s: { field(n: number, read: () => void): void }) => T,
): T {
  const common: Common = { name: "", id: 0 };
  const readers: Record<number, () => void> = {
    1: () =>
      readFields(r, { 1: () => common.name = r.string(), 2: () => common.id = r.int() as number }),
  };
  const result = body(common, { field: (n, read) => readers[n + 1] = read });
  readFields(r, readers);
  return result;
}

function show(value: unknown): string {
  const text = typeof value === "bigint" ? `${value}` : JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
