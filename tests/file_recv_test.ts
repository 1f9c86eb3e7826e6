import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  delay,
  missingPeer,
  runNcat,
  runScript,
  type ScriptProcess,
  startScript,
  TcpPeer,
} from "./helpers.ts";

const encoder = new TextEncoder();
/** The receiver's hidden folder of partial copies. */
const PARTIALS = ".netkit-partials";
const hexOf = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

/** A temp folder holding the receiver's `in/` and, beside it, files it must never touch. */
class Sandbox implements AsyncDisposable {
  readonly root = Deno.makeTempDirSync({ prefix: "netkit_file_recv_" });
  readonly dir = `${this.root}/in`;
  constructor() {
    Deno.mkdirSync(this.dir);
    Deno.writeTextFileSync(`${this.root}/outside.txt`, "precious");
  }
  /** Every path under root, relative, sorted: proof that nothing appeared outside `in/`. */
  tree(): string[] {
    const out: string[] = [];
    const walk = (rel: string) => {
      for (const e of Deno.readDirSync(`${this.root}/${rel}`)) {
        const path = rel ? `${rel}/${e.name}` : e.name;
        if (path === `in/${PARTIALS}`) continue; // see partials()
        out.push(path);
        if (e.isDirectory) walk(path);
      }
    };
    walk("");
    return out.sort();
  }
  /** The names in `in/`, the receiver's partials folder left out. */
  inbox(): string[] {
    return [...Deno.readDirSync(this.dir)].map((e) => e.name).filter((n) => n !== PARTIALS).sort();
  }
  /** The partial copies the receiver keeps. */
  partials(): string[] {
    try {
      return [...Deno.readDirSync(`${this.dir}/${PARTIALS}`)].map((e) => e.name).sort();
    } catch {
      return [];
    }
  }
  async [Symbol.asyncDispose]() {
    await Deno.remove(this.root, { recursive: true });
  }
}

function receiver(box: Sandbox, args: string[] = []): Promise<ScriptProcess> {
  return startScript("file_recv", ["127.0.0.1:0", "--dir", box.dir, ...args]);
}

/** Waits (up to 5 s) until `check` holds: the receiver cleans up after a disconnect in its own time. */
async function eventually(check: () => boolean, what: string): Promise<void> {
  for (const start = Date.now(); !check(); await delay(20)) {
    if (Date.now() - start > 5_000) assert.fail(what);
  }
}

/** The resume key file_send sends for `content`: SHA-256 of its first MiB. */
const keyOf = (content: Uint8Array) => hexOf(content.subarray(0, 1 << 20));

/** Sends a raw header line and returns the receiver's answer. */
async function offer(port: number, header: string | Uint8Array): Promise<[TcpPeer, string | null]> {
  const peer = await TcpPeer.connect(port);
  await peer.send(typeof header === "string" ? header + "\n" : header);
  return [peer, await peer.readLine()];
}

Deno.test("file_recv refuses names that are not plain file names, on both sides", async () => {
  await using box = new Sandbox();
  await using server = await receiver(box);
  const names = [
    "../../x",
    "/etc/x",
    "..",
    ".",
    "",
    "a/../../b",
    "..\\x",
    "C:\\x",
    "a\x00b",
    "\x1b[2J",
    "tab\there",
    "x".repeat(256),
  ];
  for (const name of names) {
    const [peer, answer] = await offer(server.port, `FILE 5 ${name}`);
    await using _ = peer;
    assert.match(answer ?? "", /^error Refused name .*: /, JSON.stringify(name));
    assert.equal(await peer.readLine(), null, "the receiver closes after the error");
  }
  const invalid = Uint8Array.of(...encoder.encode("FILE 5 bad"), 0xff, 0xfe, 0x0a);
  const [peer, answer] = await offer(server.port, invalid);
  peer.close();
  assert.match(answer ?? "", /^error Refused name .*not valid UTF-8/);
  await server.stderr.waitFor(/Refused name "\\x1b\[2J": the name contains control characters/);
  assert.equal(
    server.stderr.text.includes("\x1b"),
    false,
    "control characters never reach the log",
  );
  assert.deepEqual(box.tree(), ["in", "outside.txt"]);
});

Deno.test("file_recv refuses a 0-byte name, a header that is no header, and data before the answer", async () => {
  await using box = new Sandbox();
  await using server = await receiver(box);
  for (
    const [header, pattern] of [
      ["FILE 5 ", /^error Refused name "": the name is empty$/],
      ["FILE 5", /^error Refused name "": the name is empty$/],
      ["hello there", /^error Expected "FILE <size> <name>", got "hello there\\x0a" \(a bare name/],
      ["FILE 5 x.txt\nhello", /^error Content sent before the answer/],
    ]
  ) {
    const [peer, answer] = await offer(server.port, header as string);
    peer.close();
    assert.match(answer ?? "", pattern as RegExp);
  }
  const [peer, answer] = await offer(server.port, "FILE 1 " + "x".repeat(400));
  peer.close();
  assert.match(answer ?? "", /^error Header line over \d+ bytes$/);
  // A connection that says nothing and closes is logged, not saved.
  (await TcpPeer.connect(server.port)).close();
  await server.stderr.waitFor("closed without sending a header");
  assert.deepEqual(box.tree(), ["in", "outside.txt"]);
});

Deno.test("file_recv refuses a size over --max-size before writing a byte", async () => {
  await using box = new Sandbox();
  await using server = await receiver(box, ["--max-size", "1K"]);
  const [peer, answer] = await offer(server.port, "FILE 1025 big.bin");
  peer.close();
  assert.equal(answer, 'error "big.bin" is 1025 bytes, over the limit of 1024');
  const [ok, fine] = await offer(server.port, "FILE 1024 fits.bin");
  await using _ = ok;
  assert.equal(fine, "ok");
  assert.equal(box.partials().length, 1);
  ok.close();
  assert.deepEqual(box.tree().filter((p) => p.includes("big")), []);
});

Deno.test("file_recv: wrong digest, size declared too short or too long: an error, no final file", async () => {
  await using box = new Sandbox();
  await using server = await receiver(box);
  // Wrong digest: the bytes are discarded, .part included.
  {
    const [peer, answer] = await offer(server.port, "FILE 5 digest.txt");
    await using _ = peer;
    assert.equal(answer, "ok");
    await peer.send(`hello` + `sha256 ${"0".repeat(64)}\n`);
    await peer.closeWrite();
    assert.equal(
      await peer.readLine(),
      `error Digest mismatch: the bytes received have sha256 ${hexOf("hello")}, ` +
        `the sender says ${"0".repeat(64)}; discarded`,
    );
  }
  // Declared too short: what follows the content is no trailer.
  {
    const [peer, answer] = await offer(server.port, "FILE 3 short.txt");
    await using _ = peer;
    assert.equal(answer, "ok");
    await peer.send(`hello` + `sha256 ${hexOf("hello")}\n`);
    await peer.closeWrite();
    assert.match(await peer.readLine() ?? "", /^error Expected "sha256 <hex>" after the content/);
  }
  // Declared too long: the sender's half-close ends it; the .part stays for a resume.
  {
    const [peer, answer] = await offer(server.port, "FILE 1000 long.txt");
    await using _ = peer;
    assert.equal(answer, "ok");
    await peer.send(`hello` + `sha256 ${hexOf("hello")}\n`);
    await peer.closeWrite();
    assert.equal(
      await peer.readLine(),
      "error Connection closed after 77 of 1000 bytes; nothing kept (no resume key)",
    );
  }
  await server.stderr.waitFor("Connection closed after 77");
  assert.deepEqual(box.partials(), []);
  assert.deepEqual(box.tree(), ["in", "outside.txt"]);
});

Deno.test("file_recv keeps the .part of a sender that disconnects half way; the next send resumes", async () => {
  await using box = new Sandbox();
  await using server = await receiver(box);
  const content = new Uint8Array(17_000_000).map((_, i) => (i * 31) % 251);
  const opening = `key ${keyOf(content)}\nFILE ${content.byteLength} resume.bin`;
  const [peer, answer] = await offer(server.port, opening);
  assert.equal(answer, "ok");
  await peer.send(content.subarray(0, 1_234_567));
  peer.close(); // vanish half way
  await server.stderr.waitFor(/Connection closed after 1234567 of 17000000 bytes; kept to resume/);
  assert.deepEqual(box.inbox(), []);
  assert.equal(box.partials().length, 1);
  const src = `${box.root}/resume.bin`;
  await Deno.writeFile(src, content);
  const sent = await runScript("file_send", [`127.0.0.1:${server.port}`, src]);
  assert.equal(sent.code, 0, sent.stderr);
  assert.match(sent.stdout, new RegExp(`sha256 ${hexOf(content)}, resumed at 1234567`));
  await server.stdout.waitFor(/Saved .*resume\.bin .*resumed at 1234567/);
  assert.deepEqual(await Deno.readFile(`${box.dir}/resume.bin`), content);
  assert.deepEqual(box.inbox(), ["resume.bin"]);
  assert.deepEqual(box.partials(), []);
});

Deno.test("file_recv keeps a file named doc.part intact when doc is sent later", async () => {
  await using box = new Sandbox();
  await using server = await receiver(box);
  await Deno.writeTextFile(`${box.root}/doc.part`, "a file of its own");
  await Deno.writeTextFile(`${box.root}/doc`, "a file of its own, and more");
  for (const name of ["doc.part", "doc"]) {
    const r = await runScript("file_send", [`127.0.0.1:${server.port}`, `${box.root}/${name}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /resumed/);
  }
  assert.equal(await Deno.readTextFile(`${box.dir}/doc.part`), "a file of its own");
  assert.equal(await Deno.readTextFile(`${box.dir}/doc`), "a file of its own, and more");
  assert.deepEqual(box.inbox(), ["doc", "doc.part"]);
});

Deno.test("file_recv's offset answer tells a sender without the file's start nothing", async () => {
  await using box = new Sandbox();
  await using server = await receiver(box);
  const content = new Uint8Array(3_000_000).map((_, i) => (i * 7) % 253);
  const opening = `key ${keyOf(content)}\nFILE ${content.byteLength} secret.bin`;
  {
    const [peer, answer] = await offer(server.port, opening);
    await using _ = peer;
    assert.equal(answer, "ok");
    await peer.send(content.subarray(0, 2_000_000));
  }
  await server.stderr.waitFor(/after 2000000 of 3000000 bytes; kept to resume/);
  // Same name and size, no key or another key: a fresh start, as if nothing were kept.
  const probes = [`FILE 3000000 secret.bin`, `key ${"0".repeat(64)}\nFILE 3000000 secret.bin`];
  for (const [i, header] of probes.entries()) {
    const [peer, answer] = await offer(server.port, header);
    peer.close();
    assert.equal(answer, "ok", header);
    const done = () => server.stderr.count("after 0 of 3000000 bytes") === i + 1;
    await eventually(done, "the receiver is done with the probe"); // before the next claims the name
  }
  await eventually(
    () => box.partials().length === 1,
    "a probe leaves the partial alone, adds none",
  );
  // The right key but other bytes so far (the file changed after its first MiB): sent afresh.
  const changed = content.slice();
  changed[1_500_000] ^= 0xff;
  await Deno.writeFile(`${box.root}/secret.bin`, changed);
  const r = await runScript("file_send", [`127.0.0.1:${server.port}`, `${box.root}/secret.bin`]);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /resumed/);
  assert.deepEqual(await Deno.readFile(`${box.dir}/secret.bin`), changed);
  assert.deepEqual(box.partials(), []);
});

Deno.test("file_recv keeps no empty partials, and bounds and expires the others", async () => {
  await using box = new Sandbox();
  {
    await using server = await receiver(box, ["--max-partials", "3"]);
    for (let i = 0; i < 20; i++) {
      const [peer, answer] = await offer(server.port, `key ${"a".repeat(64)}\nFILE 10 z${i}`);
      peer.close(); // FILE 10 z, then a disconnect
      assert.equal(answer, "ok");
    }
    for (let i = 0; i < 6; i++) {
      const [peer, answer] = await offer(server.port, `key ${"b".repeat(64)}\nFILE 10 y${i}`);
      assert.equal(answer, "ok");
      await peer.send("12345");
      await peer.closeWrite();
      assert.match(await peer.readLine() ?? "", /after 5 of 10 bytes; kept to resume/);
      peer.close();
    }
    await eventually(() => box.partials().length === 3, box.partials().join(" "));
    assert.deepEqual(box.inbox(), []);
  }
  // Untouched for longer than --partial-ttl: deleted as the receiver starts.
  const old = new Date(Date.now() - 2 * 3600_000);
  for (const p of box.partials()) Deno.utimeSync(`${box.dir}/${PARTIALS}/${p}`, old, old);
  await using _ = await receiver(box, ["--partial-ttl", "1h"]);
  assert.deepEqual(box.partials(), [], "expired ones are gone");
});

Deno.test("file_recv never follows a symlink planted at the target or at its .part", async () => {
  await using box = new Sandbox();
  const src = `${box.root}/t.txt`;
  await Deno.writeTextFile(src, "payload");
  await Deno.symlink("../outside.txt", `${box.dir}/t.txt`);
  await Deno.symlink("../outside.txt", `${box.dir}/p.txt.part`);
  await Deno.symlink("../created.txt", `${box.dir}/d.txt.part`); // dangling
  {
    await using server = await receiver(box);
    const refused = await runScript("file_send", [`127.0.0.1:${server.port}`, src]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /Receiver refused "t.txt": "t.txt" exists/);
    // Partial copies live apart: links named like old-style partials are never opened.
    for (const name of ["p.txt", "d.txt"]) {
      const r = await runScript("file_send", [`127.0.0.1:${server.port}`, src, "--as", name]);
      assert.equal(r.code, 0, r.stderr);
    }
    const reserved = await runScript("file_send", [
      `127.0.0.1:${server.port}`,
      src,
      "--as",
      PARTIALS,
    ]);
    assert.match(reserved.stderr, /is reserved for the receiver's partial copies/);
  }
  {
    // --overwrite replaces the link itself, never what it points to.
    await using server = await receiver(box, ["--overwrite"]);
    const r = await runScript("file_send", [`127.0.0.1:${server.port}`, src]);
    assert.equal(r.code, 0, r.stderr);
  }
  assert.equal(await Deno.readTextFile(`${box.root}/outside.txt`), "precious");
  assert.equal((await Deno.lstat(`${box.dir}/t.txt`)).isSymlink, false);
  assert.equal(await Deno.readTextFile(`${box.dir}/t.txt`), "payload");
  assert.deepEqual(box.tree(), [
    "in",
    "in/d.txt",
    "in/d.txt.part",
    "in/p.txt",
    "in/p.txt.part",
    "in/t.txt",
    "outside.txt",
    "t.txt",
  ]);
  // A partials folder replaced by a link: the receiver will not start.
  await Deno.remove(`${box.dir}/${PARTIALS}`, { recursive: true });
  await Deno.symlink("..", `${box.dir}/${PARTIALS}`);
  const r = await runScript("file_recv", ["127.0.0.1:0", "--dir", box.dir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is not a directory \(a symlink or a file\)/);
  await Deno.remove(`${box.dir}/${PARTIALS}`);
});

Deno.test("file_recv --rename saves name (1).ext; --overwrite replaces; the default refuses", async () => {
  await using box = new Sandbox();
  const src = `${box.root}/a.txt`;
  await Deno.writeTextFile(src, "one");
  {
    await using server = await receiver(box, ["--rename"]);
    for (const expected of ["", ', saved as "a (1).txt"', ', saved as "a (2).txt"']) {
      const r = await runScript("file_send", [`127.0.0.1:${server.port}`, src]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.trimEnd().endsWith(hexOf("one") + expected), r.stdout);
    }
  }
  assert.deepEqual(box.inbox(), ["a (1).txt", "a (2).txt", "a.txt"]);
  await Deno.writeTextFile(src, "two");
  {
    await using server = await receiver(box);
    const r = await runScript("file_send", [`127.0.0.1:${server.port}`, src]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /"a.txt" exists \(the receiver runs without --overwrite or --rename\)/);
  }
  assert.equal(await Deno.readTextFile(`${box.dir}/a.txt`), "one");
  {
    await using server = await receiver(box, ["--overwrite"]);
    const r = await runScript("file_send", [`127.0.0.1:${server.port}`, src]);
    assert.equal(r.code, 0, r.stderr);
  }
  assert.equal(await Deno.readTextFile(`${box.dir}/a.txt`), "two");
});

Deno.test("file_recv serves several senders at once, an empty file included; logs have no bars", async () => {
  await using box = new Sandbox();
  await using server = await receiver(box);
  const files: Record<string, Uint8Array> = {
    "empty": new Uint8Array(0),
    "one.bin": new Uint8Array(1),
    "mid.bin": new Uint8Array(2_500_000).map((_, i) => i % 253),
    "big.bin": new Uint8Array(17_000_000).map((_, i) => i % 249),
    "name with spaces é.txt": encoder.encode("text\n"),
  };
  await Promise.all(
    Object.entries(files).map(async ([name, bytes]) => {
      await Deno.writeFile(`${box.root}/${name}`, bytes);
      const r = await runScript("file_send", [`127.0.0.1:${server.port}`, `${box.root}/${name}`]);
      assert.equal(r.code, 0, r.stderr);
    }),
  );
  for (const [name, bytes] of Object.entries(files)) {
    assert.deepEqual(await Deno.readFile(`${box.dir}/${name}`), bytes, name);
    await server.stdout.waitFor(`${box.dir}/${name} (`);
  }
  assert.match(server.stdout.text, new RegExp(`sha256 ${hexOf("")}\\) from 127\\.0\\.0\\.1:`));
  assert.equal(
    ["\r", "\x1b"].some((c) => server.stderr.text.includes(c)),
    false,
    "no bars when stderr is no terminal",
  );
});

Deno.test("file_recv --fsync saves files just the same, flushed before the answer", async () => {
  await using box = new Sandbox();
  await using server = await receiver(box, ["--fsync"]);
  await Deno.writeTextFile(`${box.root}/synced.txt`, "on disk");
  const r = await runScript("file_send", [`127.0.0.1:${server.port}`, `${box.root}/synced.txt`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await Deno.readTextFile(`${box.dir}/synced.txt`), "on disk");
});

Deno.test("file_recv answers the same name sent twice at once with an error to the second", async () => {
  await using box = new Sandbox();
  await using server = await receiver(box);
  const [first, a] = await offer(server.port, "FILE 10 same.txt");
  await using _ = first;
  assert.equal(a, "ok");
  const [second, b] = await offer(server.port, "FILE 10 same.txt");
  second.close();
  assert.equal(b, 'error "same.txt" is being received from another sender');
});

Deno.test({
  name: "file_recv answers a file thrown at it with ncat (no header) with a clear error",
  ignore: missingPeer("ncat"),
  async fn() {
    await using box = new Sandbox();
    await using server = await receiver(box);
    const { stdout: out } = await runNcat(
      ["127.0.0.1", String(server.port)],
      "just some file content\n",
    );
    assert.match(
      out,
      /^error Expected "FILE <size> <name>", got "just some file content\\x0a" \(a bare name, as seed 004's sender sends, is taken only by file_recv --plain\)\n$/,
    );
    assert.deepEqual(box.inbox(), []);
  },
});

Deno.test("file_recv stops on SIGTERM, keeping the .part of a transfer in flight", async () => {
  await using box = new Sandbox();
  const server = await receiver(box);
  try {
    const [peer, answer] = await offer(server.port, `key ${"c".repeat(64)}\nFILE 100 inflight.bin`);
    await using _ = peer;
    assert.equal(answer, "ok");
    await peer.send("0123456789");
    await server.stderr.waitFor("receiving");
    await delay(1_000); // the receiver reads the 10 bytes (and waits for the rest)
    server.kill("SIGTERM");
    assert.equal((await server.exit()).code, 0, server.output);
    await server.stderr.waitFor("after 10 of 100 bytes; kept to resume").catch(() => {});
    assert.deepEqual(box.inbox(), []);
    assert.equal(box.partials().length, 1, server.output);
  } finally {
    await server[Symbol.asyncDispose]();
  }
});

Deno.test("file_recv rejects bad usage with exit 2 and a missing directory with exit 1", async () => {
  for (
    const [args, code, pattern] of [
      [["0"], 2, /Missing --dir DIR/],
      [["0", "--dir", "/tmp", "--overwrite", "--rename"], 2, /either --overwrite or --rename/],
      [["0", "--dir", "/tmp", "--max-size", "lots"], 2, /Invalid --max-size "lots"/],
      [["99999", "--dir", "/tmp"], 2, /port must be 0-65535/],
      [["0", "--dir", "/nonexistent/x"], 1, /No directory "\/nonexistent\/x"/],
    ] as const
  ) {
    const r = await runScript("file_recv", [...args]);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
  const help = await runScript("file_recv", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: file_recv \[ADDR\] --dir DIR/);
});

Deno.test("file_send sends a folder recursively, relative names, symlinks skipped; file_recv keeps them inside DIR", async () => {
  await using box = new Sandbox();
  await using server = await receiver(box);
  const tree = `${box.root}/tree`;
  await Deno.mkdir(`${tree}/sub/deeper`, { recursive: true });
  await Deno.writeTextFile(`${tree}/a.txt`, "a");
  await Deno.writeTextFile(`${tree}/sub/deeper/b.txt`, "b");
  await Deno.symlink("../outside.txt", `${tree}/link.txt`);
  const r = await runScript("file_send", [`127.0.0.1:${server.port}`, tree]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /link\.txt: a symlink, skipped/);
  assert.match(r.stdout, /Sent 2 of 2 files/);
  assert.equal(await Deno.readTextFile(`${box.dir}/tree/a.txt`), "a");
  assert.equal(await Deno.readTextFile(`${box.dir}/tree/sub/deeper/b.txt`), "b");
  // A folder in DIR that is a symlink is never gone through.
  await Deno.symlink("..", `${box.dir}/evil`);
  await Deno.writeTextFile(`${box.root}/x`, "x");
  const evil = await runScript("file_send", [
    `127.0.0.1:${server.port}`,
    `${box.root}/x`,
    "--as",
    "evil/x",
  ]);
  assert.equal(evil.code, 1);
  assert.match(evil.stderr, /"evil" exists and is not a folder \(a file or a symlink\)/);
  assert.equal(await Deno.readTextFile(`${box.root}/outside.txt`), "precious");
  assert.deepEqual(box.tree().filter((p) => !p.startsWith("tree")), [
    "in",
    "in/evil",
    "in/tree",
    "in/tree/a.txt",
    "in/tree/sub",
    "in/tree/sub/deeper",
    "in/tree/sub/deeper/b.txt",
    "outside.txt",
    "x",
  ]);
});

Deno.test("file_send - sends stdin of unknown size in chunks; a broken stream is not saved", async () => {
  await using box = new Sandbox();
  await using server = await receiver(box);
  const text = "piped content\n".repeat(50_000);
  const r = await runScript("file_send", [`127.0.0.1:${server.port}`, "-", "--as", "p.txt"], {
    stdin: text,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`sha256 ${hexOf(text)}`));
  assert.equal(await Deno.readTextFile(`${box.dir}/p.txt`), text);
  const bad = await runScript("file_send", [`127.0.0.1:${server.port}`, "-"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Reading stdin \(-\) needs a name: --as NAME/);
  // Raw: a chunk over the bound, and a stream cut short.
  {
    const [peer, answer] = await offer(server.port, "FILE - big.bin");
    await using _ = peer;
    assert.equal(answer, "ok");
    await peer.send(Uint8Array.of(0x7f, 0, 0, 0));
    assert.match(await peer.readLine() ?? "", /^error A chunk of 2130706432 bytes, over 1048576/);
  }
  {
    const [peer, answer] = await offer(server.port, "FILE - cut.bin");
    assert.equal(answer, "ok");
    await peer.send(Uint8Array.of(0, 0, 0, 5, 104, 101));
    peer.close();
  }
  await server.stderr.waitFor("Connection closed after 0 bytes of a stream; discarded");
  await eventually(() => box.partials().length === 0, "no partial of a broken stream");
  assert.deepEqual(box.inbox(), ["p.txt"]);
});
