import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { LineReader, writeAll } from "../lib/io/lines.ts";
import { hasCommand, ROOT, runScript, startScript, taskArgs } from "./helpers.ts";

const encoder = new TextEncoder();
const hexOf = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

/** A receiver played by the test: accepts one connection and runs `play` on it. */
function fakeReceiver(
  play: (conn: Deno.Conn, lines: LineReader) => Promise<void>,
): { port: number; done: Promise<void> } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    try {
      await play(conn, new LineReader(conn));
    } finally {
      conn.close();
      listener.close();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    done,
    async [Symbol.asyncDispose]() {
      await done;
    },
  };
}

/** Reads and drops `n` bytes of content. */
async function drain(conn: Deno.Conn, n: number): Promise<void> {
  const buf = new Uint8Array(65536);
  for (let left = n; left > 0;) {
    const got = await conn.read(buf.subarray(0, Math.min(left, buf.byteLength)));
    if (got === null) throw new Error("sender closed early");
    left -= got;
  }
}

/** Reads the sender's opening lines and returns the header, checking the resume key on the way. */
async function header(lines: LineReader, content?: Uint8Array): Promise<string> {
  const key = await lines.readLine();
  if (content) assert.equal(key, `key ${hexOf(content.subarray(0, 1 << 20))}`);
  else assert.match(key ?? "", /^key [0-9a-f]{64}$/);
  return await lines.readLine() ?? "";
}

const say = (conn: Deno.Conn, line: string) => writeAll(conn, encoder.encode(line + "\n"));

async function withFile<T>(bytes: Uint8Array, run: (path: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "netkit_file_send_" });
  try {
    await Deno.writeFile(`${dir}/data.bin`, bytes);
    return await run(`${dir}/data.bin`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("file_send speaks the protocol: header, content after ok, trailer, half-close", async () => {
  const content = new Uint8Array(200_000).map((_, i) => i % 256);
  await withFile(content, async (path) => {
    let trailer = "";
    await using fake = fakeReceiver(async (conn, lines) => {
      assert.equal(await header(lines, content), "FILE 200000 data.bin");
      assert.equal(lines.buffered, 0, "nothing before the answer");
      await say(conn, "ok");
      await drain(conn, 200_000);
      const rest = new LineReader(conn);
      trailer = await rest.readLine() ?? "";
      assert.equal(await rest.readLine(), null, "half-closed after the trailer");
      await say(conn, `ok ${hexOf(content)} data.bin`);
    });
    const r = await runScript("file_send", [`127.0.0.1:${fake.port}`, path]);
    await fake.done;
    assert.equal(trailer, `sha256 ${hexOf(content)}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `^Sent ${path} \\(195 KiB, 200000 bytes\\) in \\d+\\.\\d\\d s, [\\d.]+ \\w+/s, sha256 ${
          hexOf(content)
        }$`,
      ),
    );
  });
});

Deno.test("file_send resumes at the offset the receiver names, hashing the whole file", async () => {
  const content = encoder.encode("0123456789abcdef");
  await withFile(content, async (path) => {
    await using fake = fakeReceiver(async (conn, lines) => {
      await header(lines, content);
      await say(conn, "ok 10");
      assert.equal(await lines.readLine(), `prefix ${hexOf(content.subarray(0, 10))}`);
      await say(conn, "ok 10");
      const buf = new Uint8Array(6);
      assert.equal(await conn.read(buf), 6);
      assert.equal(new TextDecoder().decode(buf), "abcdef");
      const trailer = await new LineReader(conn).readLine();
      assert.equal(trailer, `sha256 ${hexOf(content)}`);
      await say(conn, `ok ${hexOf(content)} data.bin`);
    });
    const r = await runScript("file_send", [`127.0.0.1:${fake.port}`, path]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /, resumed at 10$/);
  });
});

Deno.test("file_send fails when the receiver's digest differs from its own", async () => {
  await withFile(encoder.encode("hello"), async (path) => {
    await using fake = fakeReceiver(async (conn, lines) => {
      await header(lines);
      await say(conn, "ok");
      await drain(conn, 5);
      await new LineReader(conn).readLine();
      await say(conn, `ok ${"0".repeat(64)} data.bin`);
    });
    const r = await runScript("file_send", [`127.0.0.1:${fake.port}`, path]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`Digest mismatch: sent sha256 ${hexOf("hello")}, the receiver computed 0{64}`),
    );
    assert.equal(r.stdout, "");
  });
});

Deno.test("file_send reports a receiver's refusal, and its error in the middle of the content", async () => {
  await withFile(new Uint8Array(1), async (path) => {
    await using fake = fakeReceiver(async (conn, lines) => {
      await header(lines);
      await say(conn, 'error "data.bin" exists');
    });
    const r = await runScript("file_send", [`127.0.0.1:${fake.port}`, path]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Receiver refused "data.bin": "data.bin" exists/);
  });
  await withFile(new Uint8Array(32 * 1024 * 1024), async (path) => {
    await using fake = fakeReceiver(async (conn, lines) => {
      await header(lines);
      await say(conn, "ok");
      await drain(conn, 1024 * 1024);
      await say(conn, "error Disk full");
    });
    const r = await runScript("file_send", [`127.0.0.1:${fake.port}`, path]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /data\.bin: Receiver: Disk full/);
  });
});

Deno.test("file_send gives up on a silent receiver after --timeout", async () => {
  await withFile(new Uint8Array(1), async (path) => {
    await using fake = fakeReceiver(async (_conn, lines) => {
      await header(lines);
      await lines.readLine(); // says nothing until the sender leaves
    });
    const r = await runScript("file_send", [`127.0.0.1:${fake.port}`, path, "--timeout", "300ms"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No answer from 127\.0\.0\.1:\d+ within 300 ms/);
  });
});

Deno.test("file_send goes on after a failed file and exits 1 with a summary", async () => {
  const dir = await Deno.makeTempDir({ prefix: "netkit_file_send_" });
  try {
    await Deno.mkdir(`${dir}/in`);
    await Deno.writeTextFile(`${dir}/good.txt`, "good");
    await using server = await startScript("file_recv", ["127.0.0.1:0", "--dir", `${dir}/in`]);
    const target = `127.0.0.1:${server.port}`;
    const r = await runScript("file_send", [
      target,
      `${dir}/missing.txt`,
      "/dev/null",
      `${dir}/good.txt`,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /missing\.txt: No such file/);
    assert.match(r.stderr, /is not a regular file/);
    assert.match(r.stdout, /^Sent .*good\.txt \(4 B, 4 bytes\)/m);
    assert.match(r.stdout, /^Sent 1 of 3 files, 4 B in \d+\.\d\d s/m);
    assert.equal(await Deno.readTextFile(`${dir}/in/good.txt`), "good");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("file_send refuses bad names itself and reports an unreachable receiver", async () => {
  await withFile(new Uint8Array(1), async (path) => {
    for (const name of ["../x", "", "a\x1bb", "x".repeat(256)]) {
      const r = await runScript("file_send", ["127.0.0.1:1", path, "--as", name]);
      assert.equal(r.code, 1, name);
      assert.match(r.stderr, /Cannot send as ".*": /);
    }
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    const r = await runScript("file_send", [`127.0.0.1:${port}`, path]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`Cannot connect to 127\\.0\\.0\\.1:${port}: `));
  });
});

Deno.test("file_send rejects bad usage with exit 2", async () => {
  for (
    const [args, pattern] of [
      [["127.0.0.1:9"], /Missing argument: HOST:PORT FILE\|DIR\|-\.\.\./],
      [["9", "f"], /the host is missing/],
      [["127.0.0.1:9", "a", "b", "--as", "c"], /--as names one file/],
      [["127.0.0.1:9", "a", "--timeout", "soon"], /Invalid --timeout "soon"/],
    ] as const
  ) {
    const r = await runScript("file_send", [...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
  const help = await runScript("file_send", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: file_send HOST:PORT FILE\|DIR\|-\.\.\./);
});

Deno.test({
  name: "file_send draws a progress bar with rate and ETA when stderr is a terminal",
  ignore: !hasCommand("script"),
  async fn() {
    const size = 32 * 1024 * 1024; // more than the socket buffers hold
    await withFile(new Uint8Array(size), async (path) => {
      await using fake = fakeReceiver(async (conn, lines) => {
        await header(lines);
        await say(conn, "ok");
        for (let i = 0; i < 16; i++) { // slowly, so that the bar is drawn a few times
          await drain(conn, 2 * 1024 * 1024);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await new LineReader(conn).readLine();
        await say(conn, `ok ${hexOf(new Uint8Array(size))} data.bin`);
      });
      const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
      const command = [Deno.execPath(), ...taskArgs("file_send"), `127.0.0.1:${fake.port}`, path]
        .map(quote).join(" ");
      const out = await new Deno.Command("script", {
        args: ["-qec", command, "/dev/null"],
        cwd: ROOT,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout).replaceAll("\x1b[K", "<K>");
      assert.equal(out.code, 0, text);
      assert.match(
        text,
        /\r<K>data\.bin \[#*-*\] \d+% [\d.]+ \w+\/32\.0 MiB [\d.]+ \w+\/s ETA/,
      );
    });
  },
});

Deno.test({
  name: "file_send on Ctrl-C clears its bar and says how to resume",
  ignore: !hasCommand("script") || !hasCommand("timeout"),
  async fn() {
    const size = 32 * 1024 * 1024; // more than the socket buffers hold
    let release = () => {};
    const released = new Promise<void>((resolve) => release = resolve);
    await withFile(new Uint8Array(size), async (path) => {
      await using fake = fakeReceiver(async (conn, lines) => {
        await header(lines);
        await say(conn, "ok");
        await released; // takes no more bytes until the sender is gone
      });
      const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
      const command = [Deno.execPath(), ...taskArgs("file_send"), `127.0.0.1:${fake.port}`, path]
        .map(quote).join(" ");
      const out = await new Deno.Command("script", {
        args: ["-qec", `timeout --preserve-status -s INT 2 ${command}`, "/dev/null"],
        cwd: ROOT,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      release();
      const text = new TextDecoder().decode(out.stdout).replaceAll("\x1b[K", "<K>");
      assert.equal(out.code, 130, text);
      assert.match(text, /data\.bin \[#*-*\] \d+%/, "a bar was drawn");
      assert.match(
        text,
        /\r<K>[\d/: ]+\S*data\.bin: interrupted; run the same command again to resume\r?\n$/,
        "the bar is cleared before the last line, and not drawn again",
      );
    });
  },
});
