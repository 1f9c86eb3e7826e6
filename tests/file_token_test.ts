import assert from "node:assert/strict";
import { runScript, startScript, TcpPeer } from "./helpers.ts";

/** A temp folder with an inbox, a file to send and a token file. */
function sandbox() {
  const root = Deno.makeTempDirSync({ prefix: "netkit_file_token_" });
  Deno.mkdirSync(`${root}/in`);
  Deno.writeTextFileSync(`${root}/a.txt`, "payload");
  Deno.writeTextFileSync(`${root}/token`, "s3cret-token-of-the-receiver\n");
  Deno.writeTextFileSync(`${root}/other`, "s3cret-token-of-the-receiveR\n");
  return {
    root,
    dir: `${root}/in`,
    /** Everything under in/, partials included: a refused sender writes nothing at all. */
    written: () => {
      const names = [...Deno.readDirSync(`${root}/in`)].map((e) => e.name);
      const partials = [...Deno.readDirSync(`${root}/in/.netkit-partials`)].map((e) => e.name);
      return [...names.filter((n) => n !== ".netkit-partials"), ...partials];
    },
    [Symbol.asyncDispose]: () => Deno.remove(root, { recursive: true }),
  };
}

Deno.test("file_recv --token-file takes files only from senders that present the token", async () => {
  await using box = sandbox();
  await using server = await startScript("file_recv", [
    "127.0.0.1:0",
    "--dir",
    box.dir,
    "--token-file",
    `${box.root}/token`,
  ]);
  const target = `127.0.0.1:${server.port}`;
  const none = await runScript("file_send", [target, `${box.root}/a.txt`]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /This receiver needs a token: send with file_send --token-file FILE/);
  const wrong = await runScript("file_send", [
    target,
    `${box.root}/a.txt`,
    "--token-file",
    `${box.root}/other`,
  ]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /Receiver refused "a.txt": Wrong token/);
  // A bare sender and a raw one with a token but a bad header: refused before anything else.
  for (const opening of ["a.txt", "token nope\nFILE 7 a.txt\n", "FILE 7 ../../etc/passwd\n"]) {
    await using peer = await TcpPeer.connect(server.port);
    await peer.send(opening);
    assert.match(await peer.readLine() ?? "", /^error (This receiver needs a token|Wrong token)/);
    assert.equal(await peer.readLine(), null);
  }
  assert.deepEqual(box.written(), [], "a refused sender writes nothing");
  const right = await runScript("file_send", [
    target,
    `${box.root}/a.txt`,
    "--token-file",
    `${box.root}/token`,
  ]);
  assert.equal(right.code, 0, right.stderr);
  assert.equal(await Deno.readTextFile(`${box.dir}/a.txt`), "payload");
  assert.equal(server.stdout.text.includes("s3cret"), false, "the token is never printed");
  assert.equal(server.stderr.text.includes("s3cret"), false, "nor logged");
});

Deno.test("file_recv warns at start when it listens beyond loopback without a token", async () => {
  await using box = sandbox();
  {
    await using open = await startScript("file_recv", ["0.0.0.0:0", "--dir", box.dir]);
    await open.stderr.waitFor(/Warning: .*without --token-file: anyone who can reach the port/);
  }
  for (
    const args of [
      ["127.0.0.1:0", "--dir", box.dir],
      ["0.0.0.0:0", "--dir", box.dir, "--token-file", `${box.root}/token`],
    ]
  ) {
    await using quiet = await startScript("file_recv", args);
    await runScript("file_send", [`127.0.0.1:${quiet.port}`, "/nonexistent"]);
    assert.doesNotMatch(quiet.stderr.text, /Warning/, args.join(" "));
  }
});

Deno.test("file_send and file_recv refuse a missing or empty token file with exit 2", async () => {
  await using box = sandbox();
  Deno.writeTextFileSync(`${box.root}/empty`, " \n");
  for (const [file, pattern] of [["missing", /Cannot read token file/], ["empty", /is empty/]]) {
    const path = `${box.root}/${file}`;
    const recv = await runScript("file_recv", ["0", "--dir", box.dir, "--token-file", path]);
    assert.equal(recv.code, 2, recv.stderr);
    assert.match(recv.stderr, pattern as RegExp);
    const send = await runScript("file_send", ["127.0.0.1:9", "x", "--token-file", path]);
    assert.equal(send.code, 2, send.stderr);
    assert.match(send.stderr, pattern as RegExp);
  }
});
