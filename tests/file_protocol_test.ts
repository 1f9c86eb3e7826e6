import assert from "node:assert/strict";
import {
  errorLine,
  formatHeader,
  formatTrailer,
  nameProblem,
  numberedName,
  parseAnswer,
  parseHeader,
  parseTrailer,
  parseVerdict,
  ProtocolError,
} from "../lib/file/file_protocol.ts";

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("nameProblem() accepts plain names, spaces and non-ASCII included", () => {
  for (
    const name of [
      "a",
      "report.pdf",
      "my file (1).tar.gz",
      "résumé.txt",
      "日本.txt",
      ".hidden",
      "photos/2024/a.jpg",
      ".git/config",
    ]
  ) {
    assert.equal(nameProblem(name), null, name);
  }
  assert.equal(nameProblem("x".repeat(255)), null);
});

Deno.test("nameProblem() rejects paths, dots, drives, control characters and long names", () => {
  const cases: Array<[string, RegExp]> = [
    ["", /empty/],
    [".", /directory/],
    ["..", /directory/],
    ["../../x", /directory/],
    ["/etc/x", /absolute/],
    ["a/../../b", /directory/],
    ["a/./b", /directory/],
    ["a//b", /empty folder name/],
    ["a/", /empty folder name/],
    ["..\\x", /separator/],
    ["C:\\x", /separator|drive/],
    ["C:x", /drive/],
    ["a\x00b", /control/],
    ["\x1b[2J", /control/],
    ["line\nbreak", /control/],
    ["\u0085", /control/],
    ["x".repeat(256), /256 bytes, over 255/],
    ["é".repeat(128), /256 bytes/],
    ["bad\ufffd", /UTF-8/],
  ];
  for (const [name, pattern] of cases) {
    assert.match(nameProblem(name) ?? "accepted", pattern, JSON.stringify(name));
  }
});

Deno.test("parseHeader() reads what formatHeader() writes, names with spaces included", () => {
  const line = decode(formatHeader({ name: "a b c.txt", size: 1234 })).trimEnd();
  assert.equal(line, "FILE 1234 a b c.txt");
  assert.deepEqual(parseHeader(line), { name: "a b c.txt", size: 1234 });
  assert.deepEqual(parseHeader("FILE 0 empty"), { name: "empty", size: 0 });
});

Deno.test("parseHeader() refuses bad lines, bad names and sizes over the limit, quoting them", () => {
  assert.throws(() => parseHeader("hello"), /Expected "FILE <size> <name>", got "hello"/);
  assert.throws(() => parseHeader("FILE -1 x"), ProtocolError);
  assert.throws(() => parseHeader("FILE 99999999999999999999 x"), /too large/);
  assert.throws(() => parseHeader("FILE 5 "), /the name is empty/);
  assert.throws(() => parseHeader("FILE 5"), /the name is empty/);
  assert.throws(() => parseHeader("FILE 5 ../x"), /Refused name "..\/x"/);
  assert.throws(() => parseHeader("FILE 5 \x1b[2J"), /Refused name "\\x1b\[2J"/);
  assert.throws(() => parseHeader("FILE 2000 big", 1000), /"big" is 2000 bytes, over the limit/);
});

Deno.test("parseAnswer() reads ok, ok OFFSET and error; refuses an offset past the size", () => {
  assert.deepEqual(parseAnswer("ok", 10), { ok: true, offset: 0 });
  assert.deepEqual(parseAnswer("ok 4", 10), { ok: true, offset: 4 });
  assert.deepEqual(parseAnswer("error no room", 10), { ok: false, reason: "no room" });
  assert.throws(() => parseAnswer("ok 11", 10), /Unexpected answer "ok 11"/);
  assert.throws(() => parseAnswer("yes", 10), ProtocolError);
});

Deno.test("parseTrailer() and parseVerdict() read lowercase hex digests only", () => {
  const hex = "ab".repeat(32);
  assert.equal(parseTrailer(decode(formatTrailer(hex)).trimEnd()), hex);
  assert.throws(() => parseTrailer("sha256 " + "AB".repeat(32)), /declared size too short/);
  assert.throws(() => parseTrailer("garbage"), /Expected "sha256 <hex>"/);
  assert.deepEqual(parseVerdict(`ok ${hex} a (1).txt`), { ok: true, hex, saved: "a (1).txt" });
  assert.deepEqual(parseVerdict("error Digest mismatch"), {
    ok: false,
    reason: "Digest mismatch",
  });
  assert.throws(() => parseVerdict("ok"), ProtocolError);
});

Deno.test("errorLine() keeps a reason on one line", () => {
  assert.equal(errorLine("two\nlines\r\x00"), "error two lines \n");
});

Deno.test("numberedName() inserts the number before the extension", () => {
  assert.equal(numberedName("report.pdf", 1), "report (1).pdf");
  assert.equal(numberedName("a.tar.gz", 2), "a.tar (2).gz");
  assert.equal(numberedName("README", 3), "README (3)");
  assert.equal(numberedName(".bashrc", 1), ".bashrc (1)");
  assert.equal(numberedName("v1.2/notes", 1), "v1.2/notes (1)");
  assert.equal(numberedName("photos/a.jpg", 4), "photos/a (4).jpg");
});
