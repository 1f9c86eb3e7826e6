/**
 * Test certificates made at test time with Debian's `openssl` in a temp
 * folder: a CA, a server certificate for localhost/127.0.0.1/::1 signed by
 * it, an expired one, one for another host name, a key that matches
 * nothing, and a second CA that signed none of them.
 *
 * @module
 */

/** Paths of the PEM files {@link makeCerts} wrote. */
export interface TestCerts extends AsyncDisposable {
  dir: string;
  /** The CA that signed `cert`, `expired` and `wrongHost`. */
  ca: string;
  /** A CA that signed nothing here: a wrong `--ca`. */
  otherCa: string;
  /** Valid now for localhost, 127.0.0.1 and ::1. */
  cert: string;
  key: string;
  /** Same names, same key, valid only in 2020. */
  expired: string;
  /** Valid now, but only for wrong.example (same key). */
  wrongHost: string;
  /** A private key that matches none of the certificates. */
  otherKey: string;
  /** `openssl req -x509` for localhost as a user makes it in one line: self-signed and CA:TRUE. */
  selfSigned: string;
  selfSignedKey: string;
}

const CA_CONFIG = `[ca]
default_ca = ca_default
[ca_default]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = supplied
`;

async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Makes the test CA and certificates; dispose the result to remove them. */
export async function makeCerts(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: "netkit_tls_" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  const makeCa = (name: string) =>
    openssl(dir, [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
      "-days",
      "2",
      "-subj",
      `/CN=netkit test ${name}`,
    ]);
  await Promise.all([makeCa("ca"), makeCa("otherca")]);
  await openssl(dir, [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "selfsigned.key",
    "-out",
    "selfsigned.pem",
    "-days",
    "2",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ]);
  await openssl(dir, [
    "req",
    ...ec,
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=localhost",
  ]);
  await openssl(dir, [
    "req",
    ...ec,
    "-keyout",
    "other.key",
    "-out",
    "other.csr",
    "-subj",
    "/CN=other",
  ]);
  await Deno.writeTextFile(
    `${dir}/local.ext`,
    "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n",
  );
  await Deno.writeTextFile(`${dir}/wrong.ext`, "subjectAltName=DNS:wrong.example\n");
  await Deno.writeTextFile(`${dir}/ca.cnf`, CA_CONFIG);
  await Deno.writeTextFile(`${dir}/index.txt`, "");
  await Deno.writeTextFile(`${dir}/serial`, "1000\n");
  const sign = (out: string, ext: string, dates: string[]) =>
    openssl(dir, [
      "ca",
      "-batch",
      "-notext",
      "-config",
      "ca.cnf",
      "-cert",
      "ca.pem",
      "-keyfile",
      "ca.key",
      "-in",
      "server.csr",
      "-out",
      out,
      "-extfile",
      ext,
      ...dates,
    ]);
  // One at a time: `openssl ca` keeps its serial and index in files.
  await sign("server.pem", "local.ext", ["-days", "2"]);
  await sign("expired.pem", "local.ext", [
    "-startdate",
    "20200101000000Z",
    "-enddate",
    "20200102000000Z",
  ]);
  await sign("wronghost.pem", "wrong.ext", ["-days", "2"]);
  return {
    dir,
    ca: `${dir}/ca.pem`,
    otherCa: `${dir}/otherca.pem`,
    cert: `${dir}/server.pem`,
    key: `${dir}/server.key`,
    expired: `${dir}/expired.pem`,
    wrongHost: `${dir}/wronghost.pem`,
    otherKey: `${dir}/other.key`,
    selfSigned: `${dir}/selfsigned.pem`,
    selfSignedKey: `${dir}/selfsigned.key`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}
