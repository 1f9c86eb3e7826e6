import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  missingPeer,
  runNcat,
  runScript,
  type ScriptProcess,
  startScript,
  TcpPeer,
} from "./helpers.ts";

const encoder = new TextEncoder();
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
        out.push(path);
        if (e.isDirectory) walk(path);
      }
    };
    walk("");
    return out.sort();
  }
  /** The names in `in/`. */
  inbox(): string[] {
    return [...Deno.readDirSync(this.dir)].map((e) => e.name).sort();
  }
  async [Symbol.asyncDispose]() {
    await Deno.remove(this.root, { recursive: true });
  }
}

function receiver(box: Sandbox, args: string[] = []): Promise<ScriptProcess> {
  return startScript("file_recv", ["127.0.0.1:0", "--dir", box.dir, ...args]);
}

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
      ["hello there", /^error Expected "FILE <size> <name>", got "hello there"$/],
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
  assert.deepEqual(box.inbox(), ["fits.bin.part"]);
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
      'error Connection closed after 77 of 1000 bytes; "long.txt.part" kept to resume',
    );
  }
  await server.stderr.waitFor("long.txt.part");
  assert.deepEqual(box.inbox(), ["long.txt.part"]);
  assert.deepEqual(box.tree(), ["in", "in/long.txt.part", "outside.txt"]);
});

Deno.test("file_recv keeps the .part of a sender that disconnects half way; the next send resumes", async () => {
  await using box = new Sandbox();
  await using server = await receiver(box);
  const content = new Uint8Array(17_000_000).map((_, i) => (i * 31) % 251);
  const [peer, answer] = await offer(server.port, `FILE ${content.byteLength} resume.bin`);
  assert.equal(answer, "ok");
  await peer.send(content.subarray(0, 1_234_567));
  peer.close(); // vanish half way
  await server.stderr.waitFor(/Connection closed after 1234567 of 17000000 bytes/);
  assert.deepEqual(box.inbox(), ["resume.bin.part"]);
  const src = `${box.root}/resume.bin`;
  await Deno.writeFile(src, content);
  const sent = await runScript("file_send", [`127.0.0.1:${server.port}`, src]);
  assert.equal(sent.code, 0, sent.stderr);
  assert.match(sent.stdout, new RegExp(`sha256 ${hexOf(content)}, resumed at 1234567`));
  await server.stdout.waitFor(/Saved .*resume\.bin .*resumed at 1234567/);
  assert.deepEqual(await Deno.readFile(`${box.dir}/resume.bin`), content);
  assert.deepEqual(box.inbox(), ["resume.bin"]);
});

Deno.test("file_recv discards a .part that belongs to other content, then the retry succeeds", async () => {
  await using box = new Sandbox();
  await using server = await receiver(box);
  await Deno.writeTextFile(`${box.dir}/doc.txt.part`, "WRONG");
  const src = `${box.root}/doc.txt`;
  await Deno.writeTextFile(src, "right content, longer than the part");
  const first = await runScript("file_send", [`127.0.0.1:${server.port}`, src]);
  assert.equal(first.code, 1);
  assert.match(first.stderr, /Receiver: Digest mismatch/);
  assert.deepEqual(box.inbox(), []);
  const second = await runScript("file_send", [`127.0.0.1:${server.port}`, src]);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(
    await Deno.readTextFile(`${box.dir}/doc.txt`),
    "right content, longer than the part",
  );
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
    for (const name of ["p.txt", "d.txt"]) {
      const r = await runScript("file_send", [`127.0.0.1:${server.port}`, src, "--as", name]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /is not a plain file \(a symlink, directory or hard link\); refusing/);
    }
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
    "in/d.txt.part",
    "in/p.txt.part",
    "in/t.txt",
    "outside.txt",
    "t.txt",
  ]);
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
    assert.equal(out, 'error Expected "FILE <size> <name>", got "just some file content"\n');
    assert.deepEqual(box.inbox(), []);
  },
});

Deno.test("file_recv stops on SIGTERM, keeping the .part of a transfer in flight", async () => {
  await using box = new Sandbox();
  const server = await receiver(box, ["--quiet"]);
  try {
    const [peer, answer] = await offer(server.port, "FILE 100 inflight.bin");
    await using _ = peer;
    assert.equal(answer, "ok");
    await peer.send("0123456789");
    server.kill("SIGTERM");
    assert.equal((await server.exit()).code, 0, server.output);
    assert.deepEqual(box.inbox(), ["inflight.bin.part"]);
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
