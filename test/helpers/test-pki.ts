// A throw-away certificate authority made with the openssl command line (an implementation
// independent of Node's TLS stack), for tests of certificate checks: a root, an intermediate,
// and leaf certificates that are good, expired or carry another name.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Issued {
  /** PEM of the leaf alone. */
  readonly cert: string;
  readonly key: string;
  /** Leaf then the intermediate (what a server sends). */
  readonly chain: string;
}

export interface TestPki {
  readonly dir: string;
  /** The root's PEM: the trust anchor tests pass as `ca`. */
  readonly root: string;
  readonly intermediate: string;
  issue(name: string, opts?: { altNames?: readonly string[]; expired?: boolean; selfSigned?: boolean }): Issued;
  remove(): void;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

const CA_CONF = `[ca]
default_ca = CA_default
[CA_default]
dir = .
database = index.txt
new_certs_dir = certs
serial = serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[v3_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

export function createTestPki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pki-'));
  const key = (name: string) => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir);
  for (const ca of ['root', 'inter']) {
    fs.mkdirSync(path.join(dir, ca, 'certs'), { recursive: true });
    fs.writeFileSync(path.join(dir, ca, 'index.txt'), '');
    fs.writeFileSync(path.join(dir, ca, 'serial'), ca === 'root' ? '1000\n' : '5000\n');
    fs.writeFileSync(path.join(dir, ca, 'ca.conf'), CA_CONF);
  }
  key('root');
  openssl(['req', '-x509', '-new', '-key', 'root.key', '-subj', '/CN=Portcullis Test Root', '-days', '30', '-sha256',
    '-addext', 'basicConstraints=critical,CA:true', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'root.pem'], dir);
  key('inter');
  openssl(['req', '-new', '-key', 'inter.key', '-subj', '/CN=Portcullis Test Intermediate', '-out', 'inter.csr'], dir);
  openssl(['ca', '-batch', '-config', 'ca.conf', '-cert', '../root.pem', '-keyfile', '../root.key', '-days', '30',
    '-extfile', 'ca.conf', '-extensions', 'v3_ca', '-notext', '-in', '../inter.csr', '-out', '../inter.pem'], path.join(dir, 'root'));
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  let n = 0;
  return {
    dir,
    root: read('root.pem'),
    intermediate: read('inter.pem'),
    issue(name, opts = {}) {
      const id = `leaf${n++}`;
      key(id);
      const names = opts.altNames ?? [name];
      fs.writeFileSync(path.join(dir, `${id}.ext`), `[leaf]\nbasicConstraints = CA:false\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = ${names.map((a) => `DNS:${a}`).join(',')}\n`);
      if (opts.selfSigned) {
        openssl(['req', '-x509', '-new', '-key', `${id}.key`, '-subj', `/CN=${name}`, '-days', '30', '-addext', `subjectAltName=${names.map((a) => `DNS:${a}`).join(',')}`, '-out', `${id}.pem`], dir);
        const cert = read(`${id}.pem`);
        return { cert, key: read(`${id}.key`), chain: cert };
      }
      openssl(['req', '-new', '-key', `${id}.key`, '-subj', `/CN=${name}`, '-out', `${id}.csr`], dir);
      const dates = opts.expired ? ['-startdate', '20200101000000Z', '-enddate', '20200201000000Z'] : ['-days', '30'];
      // The directory layout of `openssl ca` is relative to its config: run it inside inter/.
      openssl(['ca', '-batch', '-config', 'ca.conf', '-cert', '../inter.pem', '-keyfile', '../inter.key', ...dates,
        '-extfile', `../${id}.ext`, '-extensions', 'leaf', '-notext', '-in', `../${id}.csr`, '-out', `../${id}.pem`], path.join(dir, 'inter'));
      const cert = read(`${id}.pem`);
      return { cert, key: read(`${id}.key`), chain: cert + read('inter.pem') };
    },
    remove() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
