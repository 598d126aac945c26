"""Test PKI for the integration tests, made with the openssl CLI.

make_pki(directory) creates (once per directory; later calls return the
cached result) EC P-256 keys and these certificates:

  ca            the test CA (trust anchor for the good cases)
  server        signed by ca; SAN DNS:upstream.test, DNS:localhost,
                IP:127.0.0.1
  chain         a leaf for the same names signed by an intermediate CA
                (inter) which is signed by ca; chain_crt holds leaf +
                intermediate, as real servers such as Gmail send it
  wrong_ca      an unrelated CA, and wrong_server: a cert for the right
                names signed by it (verification must fail)
  other         signed by ca, but for DNS:other.test only (name mismatch)
  expired       signed by ca for upstream.test, validity 2020-01-01 ..
                2020-01-02 (made with "openssl ca -startdate -enddate",
                as "x509 -req" in OpenSSL 3.0 cannot back-date)

The result is a PKI object whose attributes are absolute paths:
ca_crt, ca_key, server_crt, server_key, chain_crt, chain_key,
inter_crt, wrong_ca_crt, wrong_server_crt, wrong_server_key,
other_crt, other_key, expired_crt, expired_key, and dir.
Standard library only.
"""

import json
import os
import subprocess
import sys
import tempfile

NAMES = ("DNS:upstream.test", "DNS:localhost", "IP:127.0.0.1")

# Minimal OpenSSL config: we never depend on the system openssl.cnf.
REQ_CONF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
"""

CA_EXT = """\
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""

LEAF_EXT = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = {san}
"""

# "openssl ca" config, used for the back-dated (expired) certificate.
CA_CONF = """\
[ca]
default_ca = testca
[testca]
dir = {dir}
database = {dir}/index.txt
serial = {dir}/serial
new_certs_dir = {dir}
certificate = {dir}/ca.crt
private_key = {dir}/ca.key
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
email_in_dn = no
[anything]
commonName = supplied
"""

_cache = {}


class PKI:
    """Paths of the test PKI (see the module docstring)."""

    def __init__(self, paths):
        self.__dict__.update(paths)

    def __repr__(self):
        return "PKI(%r)" % self.dir


def _openssl(*args, cwd=None):
    p = subprocess.run(("openssl",) + args, cwd=cwd,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (
            " ".join(args), p.stderr.decode(errors="replace")))
    return p.stdout


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _serial():
    return "0x" + os.urandom(8).hex()


def _key(d, name):
    path = os.path.join(d, name + ".key")
    _openssl("genpkey", "-algorithm", "EC",
             "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    return path


def _csr(d, name, cn):
    key = _key(d, name)
    csr = os.path.join(d, name + ".csr")
    _openssl("req", "-new", "-config", os.path.join(d, "req.cnf"),
             "-key", key, "-subj", "/O=smartrelay tests/CN=" + cn,
             "-out", csr)
    return key, csr


def _make_ca(d, name, cn, parent=None):
    """A CA; self-signed, or signed by parent (name of another CA)."""
    key, csr = _csr(d, name, cn)
    crt = os.path.join(d, name + ".crt")
    ext = os.path.join(d, "ca.ext")
    if parent is None:
        _openssl("x509", "-req", "-in", csr, "-signkey", key,
                 "-days", "3650", "-sha256", "-set_serial", _serial(),
                 "-extfile", ext, "-out", crt)
    else:
        _openssl("x509", "-req", "-in", csr,
                 "-CA", os.path.join(d, parent + ".crt"),
                 "-CAkey", os.path.join(d, parent + ".key"),
                 "-days", "3650", "-sha256", "-set_serial", _serial(),
                 "-extfile", ext, "-out", crt)
    return crt, key


def _leaf_ext(d, name, names):
    path = os.path.join(d, name + ".ext")
    _write(path, LEAF_EXT.format(san=", ".join(names)))
    return path


def _make_leaf(d, name, ca, names, cn="upstream.test"):
    """A server certificate for names, signed by CA <ca>."""
    key, csr = _csr(d, name, cn)
    crt = os.path.join(d, name + ".crt")
    _openssl("x509", "-req", "-in", csr,
             "-CA", os.path.join(d, ca + ".crt"),
             "-CAkey", os.path.join(d, ca + ".key"),
             "-days", "825", "-sha256", "-set_serial", _serial(),
             "-extfile", _leaf_ext(d, name, names), "-out", crt)
    return crt, key


def _make_expired(d):
    """Leaf for upstream.test signed by ca, valid only in January 2020."""
    cadir = os.path.join(d, "cadb")
    os.makedirs(cadir, exist_ok=True)
    for f in ("ca.crt", "ca.key"):
        os.link(os.path.join(d, f), os.path.join(cadir, f))
    _write(os.path.join(cadir, "index.txt"), "")
    _write(os.path.join(cadir, "serial"), os.urandom(8).hex().upper() + "\n")
    conf = os.path.join(cadir, "ca.cnf")
    _write(conf, CA_CONF.format(dir=cadir))
    key, csr = _csr(d, "expired", "upstream.test")
    crt = os.path.join(d, "expired.crt")
    _openssl("ca", "-batch", "-config", conf, "-notext",
             "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
             "-extfile", _leaf_ext(d, "expired", NAMES),
             "-in", csr, "-out", crt)
    return crt, key


def _build(d):
    _write(os.path.join(d, "req.cnf"), REQ_CONF)
    _write(os.path.join(d, "ca.ext"), CA_EXT)
    p = {"dir": d}
    p["ca_crt"], p["ca_key"] = _make_ca(d, "ca", "smartrelay test CA")
    p["server_crt"], p["server_key"] = _make_leaf(d, "server", "ca", NAMES)
    p["inter_crt"], p["inter_key"] = _make_ca(
        d, "inter", "smartrelay test intermediate", parent="ca")
    leaf, p["chain_key"] = _make_leaf(d, "chainleaf", "inter", NAMES)
    p["chain_crt"] = os.path.join(d, "chain.crt")
    with open(p["chain_crt"], "w") as out:
        for f in (leaf, p["inter_crt"]):
            with open(f) as src:
                out.write(src.read())
    p["wrong_ca_crt"], p["wrong_ca_key"] = _make_ca(
        d, "wrong_ca", "smartrelay WRONG test CA")
    p["wrong_server_crt"], p["wrong_server_key"] = _make_leaf(
        d, "wrong_server", "wrong_ca", NAMES)
    p["other_crt"], p["other_key"] = _make_leaf(
        d, "other", "ca", ("DNS:other.test",), cn="other.test")
    p["expired_crt"], p["expired_key"] = _make_expired(d)
    return p


def make_pki(directory):
    """Creates the test PKI in directory (made if missing) unless it is
    already there; returns a PKI object of absolute paths."""
    d = os.path.abspath(directory)
    if d in _cache:
        return _cache[d]
    index = os.path.join(d, "pki.json")
    paths = None
    try:
        with open(index) as f:
            paths = json.load(f)
        if not all(os.path.exists(v) for v in paths.values()):
            paths = None
    except (OSError, ValueError):
        paths = None
    if paths is None:
        os.makedirs(d, exist_ok=True)
        # Build in a scratch directory, then publish pki.json last, so
        # a half-built PKI is never mistaken for a complete one.
        work = tempfile.mkdtemp(prefix="pki.", dir=d)
        paths = _build(work)
        tmp = index + ".tmp"
        with open(tmp, "w") as f:
            json.dump(paths, f, indent=1)
        os.rename(tmp, index)
    pki = PKI(paths)
    _cache[d] = pki
    return pki


if __name__ == "__main__":
    print(json.dumps(make_pki(sys.argv[1] if len(sys.argv) > 1
                              else tempfile.mkdtemp()).__dict__, indent=1))
