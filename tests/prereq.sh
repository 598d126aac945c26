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

# Where scripts/fetch-test-tools unpacks bsd-mailx and Postfix's
# smtp-source: their packages must not be installed here (bsd-mailx
# pulls in exim4; postfix starts a second MTA on port 25).
tools=${SMARTRELAY_TEST_TOOLS:-/var/cache/smartrelay-test}
unpacked=

# fetched WHAT COMMAND...: like need, for a program that
# scripts/fetch-test-tools unpacks.
fetched() {
	what=$1
	shift
	if "$@" >/dev/null 2>&1; then
		[ -n "$quiet" ] || echo "ok       $what"
	else
		echo "MISSING  $what: run scripts/fetch-test-tools (as root)," \
		    "which unpacks it under $tools; do not install the package"
		unpacked=1
	fi
}

# have_lib SONAME: the dynamic linker knows SONAME.
have_lib() {
	/sbin/ldconfig -p | grep -q "^[[:space:]]*$1 "
}

# smtp-source without arguments prints its usage, not a loader error.
smtp_source() {
	LD_LIBRARY_PATH="$tools/postfix/usr/lib/postfix" \
	    "$tools/postfix/usr/sbin/smtp-source" 2>&1 | grep -q 'usage:'
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
need msmtp "msmtp (SMTP client, itest_clients)" have msmtp
need s-nail "s-nail (mail client, itest_clients)" have s-nail
need git-email "git send-email (itest_clients)" \
    test -x "$(git --exec-path 2>/dev/null)/git-send-email"
need libmailtools-perl "Perl module Mail::Address (git send-email)" \
    perl -MMail::Address -e 1
need perl-modules-5.36 "Perl module Net::SMTP (itest_clients)" \
    perl -MNet::SMTP -e 1
need liblockfile1 "liblockfile.so.1 (bsd-mailx)" have_lib liblockfile.so.1
need libbsd0 "libbsd.so.0 (bsd-mailx)" have_lib libbsd.so.0
need libdb5.3 "libdb-5.3.so (smtp-source)" have_lib libdb-5.3.so
need libicu72 "libicuuc.so.72 (smtp-source)" have_lib libicuuc.so.72
need libnsl2 "libnsl.so.2 (smtp-source)" have_lib libnsl.so.2
fetched "bsd-mailx (mail client, itest_clients)" \
    test -x "$tools/bsd-mailx/usr/bin/bsd-mailx"
fetched "Postfix's smtp-source (load generator, itest_clients)" smtp_source
[ -z "$(command -v strace)" ] ||
	need strace "strace -e inject (ptrace permitted)" strace_inject

if [ -n "$missing" ]; then
	echo "prereq: missing Debian package(s):$missing"
	echo "prereq: run ./scripts/bootstrap (as root) or" \
	    "apt-get install$missing"
fi
if [ -n "$unpacked" ]; then
	echo "prereq: run ./scripts/bootstrap or scripts/fetch-test-tools" \
	    "(as root) to unpack bsd-mailx and smtp-source"
fi
[ -z "$missing$unpacked" ] || exit 1
[ -n "$quiet" ] || echo "prereq: every program and module the tests use" \
    "is installed"
exit 0
