/**
 * RFC 6455 conformance, case by case, modelled on the sections of the
 * Autobahn testsuite (framing, pings, reserved bits, opcodes,
 * fragmentation, UTF-8, close handling, limits). A raw-frame client sends
 * each case to ws_echo_server and to ws_chat_server; every case expects the
 * RFC's outcome: the echoed frames, or the close code, and then a closed
 * TCP connection.
 */
import assert from "node:assert/strict";
import { type ScriptProcess, startScript, startWsChat } from "./helpers.ts";
import { buildFrame, type Frame, OP, RawWsClient } from "./ws_raw.ts";

const encoder = new TextEncoder();
/** The echo server's --max-message for these cases: above 65536, below the oversize frames. */
const ECHO_MAX = 100_000;

interface Case {
  /** Autobahn's section, and what is sent. */
  name: string;
  /** Bytes to send, one write per element. */
  send: Uint8Array[];
  /** Frames expected back (text and binary compared only on the echo server). */
  frames?: Frame[];
  /** The close code expected from the server (after `frames`). */
  close?: number;
  /** Only the echo server can answer it (it expects echoed data). */
  echoOnly?: boolean;
}

const f = buildFrame;
const bytes = (...b: number[]) => Uint8Array.from(b);
const text = (s: string | Uint8Array): Frame => ({
  opcode: OP.text,
  payload: typeof s === "string" ? encoder.encode(s) : s,
});
const closeWith = (code: number, reason: Uint8Array | string = "") => {
  const r = typeof reason === "string" ? encoder.encode(reason) : reason;
  const payload = new Uint8Array(2 + r.length);
  payload[0] = code >> 8;
  payload[1] = code & 0xff;
  payload.set(r, 2);
  return f({ opcode: OP.close, payload });
};

function cases(): Case[] {
  const all: Case[] = [];
  // 1 Framing: text and binary at every length boundary.
  for (const n of [0, 125, 126, 127, 65535, 65536]) {
    const payload = new Uint8Array(n).fill(0x61);
    all.push({
      name: `1.1 text of ${n} bytes`,
      send: [f({ opcode: OP.text, payload })],
      frames: [text(payload)],
      echoOnly: true,
    });
    all.push({
      name: `1.2 binary of ${n} bytes`,
      send: [f({ opcode: OP.binary, payload: payload.map((_, i) => i & 0xff) })],
      frames: [{ opcode: OP.binary, payload: payload.map((_, i) => i & 0xff) }],
      echoOnly: true,
    });
  }
  const split = f({ opcode: OP.text, payload: "split one byte at a time" });
  all.push({
    name: "1.3 a frame written one byte at a time",
    send: [...split].map((b) => bytes(b)),
    frames: [text("split one byte at a time")],
    echoOnly: true,
  });
  // 2 Pings and pongs.
  all.push({
    name: "2.1 ping with a payload is answered with the same pong",
    send: [f({ opcode: OP.ping, payload: "hello" })],
    frames: [{ opcode: OP.pong, payload: encoder.encode("hello") }],
  });
  all.push({
    name: "2.2 ping of 125 bytes",
    send: [f({ opcode: OP.ping, payload: new Uint8Array(125).fill(0xfe) })],
    frames: [{ opcode: OP.pong, payload: new Uint8Array(125).fill(0xfe) }],
  });
  all.push({
    name: "2.3 ping of 126 bytes: 1002",
    send: [f({ opcode: OP.ping, payload: new Uint8Array(126) })],
    close: 1002,
  });
  all.push({
    name: "2.4 fragmented ping: 1002",
    send: [f({ opcode: OP.ping, payload: "a", fin: false })],
    close: 1002,
  });
  all.push({
    name: "2.5 unsolicited pong is ignored",
    send: [f({ opcode: OP.pong, payload: "x" }), f({ opcode: OP.text, payload: "after" })],
    frames: [text("after")],
    echoOnly: true,
  });
  // 3 Reserved bits.
  for (const rsv of [1, 2, 3, 4, 7]) {
    all.push({
      name: `3.${rsv} text with RSV ${rsv}: 1002`,
      send: [f({ opcode: OP.text, payload: "x", rsv })],
      close: 1002,
    });
  }
  all.push({
    name: "3.8 ping with RSV1: 1002",
    send: [f({ opcode: OP.ping, payload: "x", rsv: 4 })],
    close: 1002,
  });
  // 4 Opcodes.
  for (const opcode of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
    all.push({
      name: `4 reserved opcode ${opcode}: 1002`,
      send: [f({ opcode, payload: "x" })],
      close: 1002,
    });
  }
  // 5 Fragmentation.
  all.push({
    name: "5.1 text in three fragments",
    send: [
      f({ opcode: OP.text, payload: "frag", fin: false }),
      f({ opcode: 0, payload: "men", fin: false }),
      f({ opcode: 0, payload: "ted" }),
    ],
    frames: [text("fragmented")],
    echoOnly: true,
  });
  all.push({
    name: "5.2 binary in two fragments",
    send: [
      f({ opcode: OP.binary, payload: bytes(1, 2), fin: false }),
      f({ opcode: 0, payload: bytes(3) }),
    ],
    frames: [{ opcode: OP.binary, payload: bytes(1, 2, 3) }],
    echoOnly: true,
  });
  all.push({
    name: "5.3 ping between fragments is answered first",
    send: [
      f({ opcode: OP.text, payload: "a", fin: false }),
      f({ opcode: OP.ping, payload: "p" }),
      f({ opcode: 0, payload: "b" }),
    ],
    frames: [{ opcode: OP.pong, payload: encoder.encode("p") }, text("ab")],
  });
  all.push({
    name: "5.4 continuation with no message open: 1002",
    send: [f({ opcode: 0, payload: "x" })],
    close: 1002,
  });
  all.push({
    name: "5.5 new text frame inside a fragmented message: 1002",
    send: [f({ opcode: OP.text, payload: "a", fin: false }), f({ opcode: OP.text, payload: "b" })],
    close: 1002,
  });
  all.push({
    name: "5.6 fragmented close: 1002",
    send: [f({ opcode: OP.close, payload: bytes(3, 232), fin: false })],
    close: 1002,
  });
  // 6 UTF-8.
  all.push({
    name: "6.1 valid multi-byte text",
    send: [f({ opcode: OP.text, payload: "κόσμε 🙂" })],
    frames: [text("κόσμε 🙂")],
    echoOnly: true,
  });
  const smiley = encoder.encode("🙂");
  all.push({
    name: "6.2 a character split across fragments",
    send: [
      f({ opcode: OP.text, payload: smiley.subarray(0, 2), fin: false }),
      f({ opcode: 0, payload: smiley.subarray(2) }),
    ],
    frames: [text("🙂")],
    echoOnly: true,
  });
  const invalid: Array<[string, Uint8Array]> = [
    ["0xff", bytes(0x61, 0xff)],
    ["overlong C0 80", bytes(0xc0, 0x80)],
    ["surrogate ED A0 80", bytes(0xed, 0xa0, 0x80)],
    ["above U+10FFFF", bytes(0xf4, 0x90, 0x80, 0x80)],
    ["truncated E2 82", bytes(0x61, 0xe2, 0x82)],
  ];
  for (const [what, payload] of invalid) {
    all.push({
      name: `6.3 invalid UTF-8 (${what}): 1007`,
      send: [f({ opcode: OP.text, payload })],
      close: 1007,
    });
  }
  all.push({
    name: "6.4 invalid UTF-8 in a later fragment: 1007",
    send: [
      f({ opcode: OP.text, payload: "ok", fin: false }),
      f({ opcode: 0, payload: bytes(0xff) }),
    ],
    close: 1007,
  });
  all.push({
    name: "6.5 invalid UTF-8 fails fast, before the message ends",
    send: [f({ opcode: OP.text, payload: bytes(0x61, 0xc0, 0x80), fin: false })],
    close: 1007,
  });
  all.push({
    name: "6.6 a character cut at the end of the message: 1007",
    send: [
      f({ opcode: OP.text, payload: smiley.subarray(0, 2), fin: false }),
      f({ opcode: 0, payload: bytes() }),
    ],
    close: 1007,
  });
  // 7 Close handling.
  all.push({ name: "7.1 empty close is answered", send: [f({ opcode: OP.close })], close: 1005 });
  all.push({
    name: "7.2 close 1000 with a reason",
    send: [closeWith(1000, "bye")],
    close: 1000,
  });
  all.push({
    name: "7.3 text after the close is ignored",
    send: [closeWith(1000), f({ opcode: OP.text, payload: "late" })],
    close: 1000,
  });
  all.push({
    name: "7.4 close with a one-byte payload: 1002",
    send: [f({ opcode: OP.close, payload: bytes(3) })],
    close: 1002,
  });
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    all.push({
      name: `7.5 invalid close code ${code}: 1002`,
      send: [closeWith(code)],
      close: 1002,
    });
  }
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999]) {
    all.push({
      name: `7.6 valid close code ${code} is echoed`,
      send: [closeWith(code)],
      close: code,
    });
  }
  all.push({
    name: "7.7 close reason of 123 bytes",
    send: [closeWith(1000, "r".repeat(123))],
    close: 1000,
  });
  all.push({
    name: "7.8 close reason that is not UTF-8: 1007",
    send: [closeWith(1000, bytes(0xce, 0xba, 0xff))],
    close: 1007,
  });
  // 9 Limits and masking.
  all.push({
    name: "9.1 unmasked client frame: 1002",
    send: [f({ opcode: OP.text, payload: "x", masked: false })],
    close: 1002,
  });
  all.push({
    name: "9.2 a frame declaring 200000 bytes is refused from its header: 1009",
    send: [f({ opcode: OP.binary, length: 200_000 })],
    close: 1009,
  });
  all.push({
    name: "9.3 fragments adding up over the bound: 1009",
    send: [
      f({ opcode: OP.binary, payload: new Uint8Array(60_000), fin: false }),
      f({ opcode: 0, payload: new Uint8Array(60_000), fin: false }),
    ],
    close: 1009,
  });
  all.push({
    name: "9.4 a 64-bit length with the top bit set: 1002",
    send: [
      (() => {
        const frame = f({ opcode: OP.binary, length: 1, longLength: true });
        frame[2] = 0x80;
        return frame;
      })(),
    ],
    close: 1002,
  });
  return all;
}

function describe(frame: Frame | null): string {
  if (!frame) return "end of stream";
  return `opcode ${frame.opcode}, ${frame.payload.length} bytes`;
}

/** Runs one case on a new connection and checks the RFC's outcome. */
async function runCase(server: ScriptProcess, path: string, c: Case, chat: boolean) {
  const { client, reply } = await RawWsClient.open(server.port, path);
  await using _c = client;
  assert.equal(reply.status, 101, reply.head);
  await client.sendRaw(...c.send);
  for (const want of c.frames ?? []) {
    let got = await client.readFrame();
    // The chat room's own JSON frames (welcome, presence) are not part of the case.
    while (chat && got && (got.opcode === OP.binary || got.opcode === OP.text)) {
      if (want.opcode !== OP.pong) break;
      got = await client.readFrame();
    }
    if (chat && (want.opcode === OP.text || want.opcode === OP.binary)) continue;
    assert.equal(got?.opcode, want.opcode, `${c.name}: got ${describe(got)}`);
    assert.deepEqual(got?.payload, want.payload, c.name);
  }
  if (c.close === undefined) {
    await client.sendRaw(closeWith(1000));
  }
  const { code, messages } = await client.readClose();
  const unexpected = chat ? [] : messages;
  assert.deepEqual(unexpected.map(describe), [], `${c.name}: frames before the close`);
  assert.equal(code, c.close ?? 1000, c.name);
  assert.equal(await client.closedByServer(), true, `${c.name}: TCP left open`);
}

Deno.test("RFC 6455 cases against ws_echo_server: echoes, close codes, closed TCP", async (t) => {
  await using server = await startScript("ws_echo_server", [
    "127.0.0.1:0",
    "--quiet",
    "--max-message",
    String(ECHO_MAX),
  ]);
  for (const c of cases()) {
    await t.step(c.name, () => runCase(server, "/ws", c, false));
  }
});

Deno.test("RFC 6455 cases against ws_chat_server: the same close codes", async (t) => {
  await using server = await startWsChat(["--tcp-port=off", "--quiet"]);
  let n = 0;
  for (const c of cases().filter((c) => !c.echoOnly)) {
    await t.step(c.name, () => runCase(server, `/ws?name=case${n++}`, c, true));
  }
});
