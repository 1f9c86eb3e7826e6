import assert from "node:assert/strict";
import {
  escapeControls,
  forTerminal,
  logPayload,
  maskControls,
  quoteText,
} from "../lib/io/escape.ts";

const encoder = new TextEncoder();

Deno.test("escapeControls makes ESC, C1, newlines and every bidi mark visible", () => {
  assert.equal(escapeControls("\x1b[2J\x1b]0;title\x07"), "\\x1b[2J\\x1b]0;title\\x07");
  assert.equal(escapeControls("a\nb\rc\u009bd"), "a\\x0ab\\x0dc\\x9bd");
  assert.equal(
    escapeControls("\u061c\u200e\u200f\u202a\u202e\u2066\u2069\u2028"),
    "\\u061c\\u200e\\u200f\\u202a\\u202e\\u2066\\u2069\\u2028",
  );
  assert.equal(escapeControls("plain café 👩‍👩‍👧 \\x1b"), "plain café 👩‍👩‍👧 \\x1b");
});

Deno.test("logPayload cuts after the bound, never inside a character, and counts the rest", () => {
  assert.equal(logPayload("short\x1b"), "short\\x1b");
  assert.equal(
    logPayload(new Uint8Array(5000).fill(0x61)),
    "a".repeat(200) + "... (4800 more bytes)",
  );
  // 199 bytes of "a" and then a 2-byte character: the cut goes before it.
  const text = "a".repeat(199) + "é" + "b".repeat(10);
  assert.equal(logPayload(text), "a".repeat(199) + "... (12 more bytes)");
  assert.equal(logPayload(encoder.encode(text)), "a".repeat(199) + "... (12 more bytes)");
  assert.equal(logPayload("x".repeat(10), 4), "xxxx... (6 more bytes)");
});

Deno.test("quoteText quotes, escapes and shortens", () => {
  assert.equal(quoteText('say "hi"\x1b'), '"say \\"hi\\"\\x1b"');
  assert.equal(quoteText("abcdef", 3), '"abc"...');
});

Deno.test("forTerminal escapes only for a terminal", () => {
  assert.equal(forTerminal("\x1b[2J", { isTerminal: () => true }), "\\x1b[2J");
  assert.equal(forTerminal("\x1b[2J", { isTerminal: () => false }), "\x1b[2J");
});

Deno.test("maskControls() masks controls, C1, bidi marks and separators, keeps newline and tab", () => {
  assert.equal(maskControls("a\x1b[2J\u009b\u202e\u2066\u2029b\n\tc\r"), "a?[2J????b\n\tc?");
  assert.equal(maskControls("plain ü 😀"), "plain ü 😀");
});
