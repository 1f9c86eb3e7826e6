import assert from "node:assert/strict";
import {
  chatTime,
  checkName,
  cleanMessage,
  escapeControls,
  MessageError,
  NameError,
} from "../lib/chat/chat_text.ts";

Deno.test("checkName() trims and accepts any visible name of 1-32 characters", () => {
  assert.equal(checkName("  alice "), "alice");
  assert.equal(checkName("<script>x</script>"), "<script>x</script>");
  assert.equal(checkName("名字"), "名字");
  assert.equal(checkName("😀".repeat(32)), "😀".repeat(32));
  assert.throws(() => checkName("😀".repeat(33)), NameError);
  assert.throws(() => checkName("a\tb"), /control character/);
  assert.throws(() => checkName("a\u0085b"), /control character/);
  assert.throws(() => checkName("a\u2066b"), /control character/);
  assert.throws(() => checkName("a b"), /spaces are not allowed/);
});

Deno.test("cleanMessage() turns newlines into spaces, trims, and bounds bytes", () => {
  assert.equal(cleanMessage("  one\ntwo\r\nthree\rfour\u2028five  "), "one two three four five");
  assert.throws(() => cleanMessage(" \n "), MessageError);
  assert.equal(cleanMessage("x".repeat(512)), "x".repeat(512));
  assert.throws(() => cleanMessage("x".repeat(513)), /513 bytes, the limit is 512/);
  assert.throws(() => cleanMessage("é".repeat(257)), /514 bytes/);
});

Deno.test("escapeControls() shows escape sequences and bidi overrides as text", () => {
  assert.equal(escapeControls("plain <b>"), "plain <b>");
  assert.equal(escapeControls("\x1b[31mred\x07"), "\\x1b[31mred\\x07");
  assert.equal(escapeControls("a\u202eb\x7f\x9b"), "a\\u202eb\\x7f\\x9b");
});

Deno.test("chatTime() formats as seed 001: 2006-01-02 15:04:05", () => {
  assert.equal(chatTime(new Date(2006, 0, 2, 15, 4, 5)), "2006-01-02 15:04:05");
});
