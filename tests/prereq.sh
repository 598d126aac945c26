#!/bin/sh
# tests/prereq.sh - the first entry of "make check": is every program
# and module the tests start installed?  Each missing one is named with
# the Debian package that provides it (scripts/bootstrap installs them
# all), and this test fails once, here, instead of the tests failing
# deep inside.  harness.py runs it too (with -q) and skips the
# integration tests while something is missing.
#
# usage: sh tests/prereq.sh [-q]      (-q: print only what is missing)
# Environment: PYTHON3 (default /usr/bin/python3, as the tests use).

quiet=
[ "${1:-}" = -q ] && quiet=1
py=${PYTHON3:-/usr/bin/python3}
missing=

# need PACKAGE WHAT COMMAND...: COMMAND succeeds when WHAT is usable.
need() {
	pkg=$1 what=$2
	shift 2
	if "$@" >/dev/null 2>&1; then
		[ -n "$quiet" ] || echo "ok       $what"
	else
		echo "MISSING  $what: install the Debian package $pkg"
		case " $missing " in
		*" $pkg "*) ;;
		*) missing="$missing $pkg" ;;
		esac
	fi
}

have() {
	command -v "$1"
}

# swaks prints "=== TLS supported" only when Net::SSLeay loads.
swaks_tls() {
	swaks --support 2>&1 | grep -q '^=== TLS supported'
}

# strace must be able to delay a system call (itest_faults.py).
strace_inject() {
	strace -f -qq -o /dev/null -e trace=unlinkat \
	    -e inject=unlinkat:delay_enter=1 true
}

need python3 "$py (runs the integration tests)" test -x "$py"
need python3-aiosmtpd "python3 module aiosmtpd (the test upstream)" \
    "$py" -c 'import aiosmtpd.smtp'
need swaks "swaks (SMTP client)" have swaks
need libnet-ssleay-perl "swaks with STARTTLS and TLS (Net::SSLeay)" swaks_tls
need openssl "openssl (test certificates, password hashes)" have openssl
need util-linux "unshare (private mounts and network namespaces)" \
    have unshare
need util-linux "setpriv (runs tools as user nobody)" have setpriv
need mount "mount (tmpfs spool for the disk-full test)" have mount
need iproute2 "ip (network namespace tests)" have ip
need nftables "nft (blackholed addresses in itest_addresses)" have nft
need systemd "systemd-analyze (unit checks)" have systemd-analyze
need systemd "systemd-socket-activate (socket activation test)" \
    have systemd-socket-activate
need libc-bin "ldd (what the daemon links)" have ldd
need valgrind "valgrind (leak check)" have valgrind
need strace "strace (slows the spool's unlinks down)" have strace
need php-cli "php (PHP's mail() through the injector)" have php
[ -z "$(command -v strace)" ] ||
	need strace "strace -e inject (ptrace permitted)" strace_inject

if [ -n "$missing" ]; then
	echo "prereq: missing Debian package(s):$missing"
	echo "prereq: run ./scripts/bootstrap (as root) or" \
	    "apt-get install$missing"
	exit 1
fi
[ -n "$quiet" ] || echo "prereq: every program and module the tests use" \
    "is installed"
exit 0
