"""The layers of src/ hold: each folder includes only its own headers
and those of the layers below it, and lib/ (pure code) includes no
libevent or OpenSSL header.  The build enforces the first rule too (each
folder compiles with its own include path); this test says which file
broke it, and checks what include paths cannot: system headers.

    lib/ <- net/ <- daemon/      lib/ <- sendmail/      lib/, net/ <- ctl/
"""

import os
import re
import sys
import unittest

SRC = os.path.join(os.environ.get("TESTS_SRCDIR") or
                   os.path.dirname(os.path.abspath(__file__)), "..", "src")
MAY_INCLUDE = {
    "lib": ("lib",),
    "net": ("lib", "net"),
    "daemon": ("lib", "net", "daemon"),
    "ctl": ("lib", "net", "ctl"),
    "sendmail": ("lib", "sendmail"),
}
PURE_FORBIDDEN = re.compile(r"#include\s*<(event2/|openssl/|"
                            r"sys/inotify\.h|pthread\.h)")
LOCAL = re.compile(r'#include\s*"([^"]+)"')


def sources(folder):
    d = os.path.join(SRC, folder)
    return sorted(os.path.join(d, f) for f in os.listdir(d)
                  if f.endswith((".c", ".h")))


class Layers(unittest.TestCase):

    def test_folders_are_the_layers(self):
        self.assertEqual(sorted(d for d in os.listdir(SRC)
                                if os.path.isdir(os.path.join(SRC, d))
                                and not d.startswith(".")),
                         sorted(MAY_INCLUDE))
        stray = [f for f in os.listdir(SRC) if f.endswith((".c", ".h"))]
        self.assertEqual(stray, [], "sources outside the layer folders")

    def test_includes_point_down(self):
        where = {}
        for folder in MAY_INCLUDE:
            for path in sources(folder):
                where.setdefault(os.path.basename(path), folder)
        bad = []
        for folder, allowed in MAY_INCLUDE.items():
            for path in sources(folder):
                with open(path) as f:
                    for n, line in enumerate(f, 1):
                        m = LOCAL.match(line)
                        if not m or m.group(1) == "config.h":
                            continue
                        home = where.get(m.group(1))
                        if home not in allowed:
                            bad.append("%s:%d includes %s (%s)"
                                       % (os.path.relpath(path, SRC), n,
                                          m.group(1), home))
        self.assertEqual(bad, [])

    def test_lib_is_pure(self):
        bad = []
        for path in sources("lib"):
            with open(path) as f:
                for n, line in enumerate(f, 1):
                    if PURE_FORBIDDEN.match(line):
                        bad.append("%s:%d %s" % (os.path.relpath(path, SRC),
                                                 n, line.strip()))
        self.assertEqual(bad, [])

    def test_no_private_half_headers(self):
        """A module is one object with one header (STYLE.md 2)."""
        halves = [p for f in MAY_INCLUDE for p in sources(f)
                  if p.endswith("_int.h")]
        # XXX issue 12: queue_int.h goes when the upstream becomes an
        # object.
        known = {"queue_int.h"}
        self.assertEqual(sorted(set(os.path.basename(p) for p in halves) -
                                known), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
