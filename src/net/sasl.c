/*
 * sasl.c - what SMTP AUTH needs beyond the pure step functions of
 * lib/saslstep.c: their base64 codec, and reading secret files.
 *
 * Base64 is OpenSSL's (EVP_EncodeBlock/EVP_DecodeBlock), not our own.
 * Every buffer that held a credential is wiped with OPENSSL_cleanse()
 * before it is freed or goes out of scope.  Nothing here logs.
 */
#include "config.h"

#include "sasl.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util.h"

#define SASL_B64_MAX	(1024 * 1024)	/* far above any credential */
#define SASL_PASSFILE_MAX	1024	/* password file octets */

char *
sasl_encode(const void *p, size_t len)
{
	char	*out;

	if (len > SASL_B64_MAX)
		return NULL;
	out = xmalloc((len + 2) / 3 * 4 + 1);
	/* EVP_EncodeBlock writes the terminating NUL itself. */
	EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	return out;
}

const struct sasl_b64 sasl_b64_openssl = { sasl_encode, sasl_unbase64 };

/* Strict RFC 4648 §4 form: a multiple of 4 characters of the base64
 * alphabet, with at most two '=' and only at the very end.  Returns the
 * number of '=' or -1.  EVP_DecodeBlock() alone would skip whitespace
 * and take '=' in odd places. */
static int
sasl_b64_check(const char *in, size_t len)
{
	size_t	i;
	int	pad = 0;

	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (in[i] == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789+/", in[i]) == NULL)
			return -1;
	}
	return pad > 2 ? -1 : pad;
}

int
sasl_unbase64(const char *in, char *out, size_t outsz)
{
	size_t		 len = strlen(in);
	unsigned char	*tmp;
	int		 pad, n;

	if (len > SASL_B64_MAX || (pad = sasl_b64_check(in, len)) == -1)
		return -1;
	tmp = xmalloc(len / 4 * 3 + 1);
	n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)len);
	/* EVP_DecodeBlock counts the zero octets that the padding stands
	 * for; they are not part of the data. */
	if (n != -1)
		n -= pad;
	/* Room for the data and a terminating NUL, so that a text challenge
	 * such as "Username:" can be used as a string. */
	if (n < 0 || (size_t)n >= outsz) {
		n = -1;
	} else {
		memcpy(out, tmp, (size_t)n);
		out[n] = '\0';
	}
	OPENSSL_cleanse(tmp, len / 4 * 3 + 1);
	free(tmp);
	return n;
}

int
sasl_secret_stat_check(const char *path, const struct stat *st, char *err,
    size_t errsz)
{
	unsigned int	mode = st->st_mode & 07777;

	if (!S_ISREG(st->st_mode)) {
		str_errf(err, errsz, "%s is not a regular file", path);
		return -1;
	}
	if (st->st_mode & (S_IROTH | S_IWOTH)) {
		str_errf(err, errsz, "%s is %s by others (mode %04o): "
		    "chmod 0600 it", path, (st->st_mode & S_IROTH) ?
		    "readable" : "writable", mode);
		return -1;
	}
	if (st->st_mode & S_IWGRP) {
		str_errf(err, errsz, "%s is writable by its group "
		    "(mode %04o): chmod 0600 it", path, mode);
		return -1;
	}
	return 0;
}

/* The fstat() checks of sasl_read_password().  Returns 0 or -1 with
 * the reason stored. */
static int
sasl_pass_check(const char *path, const struct stat *st, char *err,
    size_t errsz)
{
	if (sasl_secret_stat_check(path, st, err, errsz) == -1)
		return -1;
	if (st->st_size == 0) {
		str_errf(err, errsz, "%s is empty", path);
		return -1;
	}
	if (st->st_size > SASL_PASSFILE_MAX) {
		str_errf(err, errsz, "%s is over %d octets: it should hold "
		    "only the password", path, SASL_PASSFILE_MAX);
		return -1;
	}
	return 0;
}

/* Reads up to <bufsz> octets of <fd>.  Returns the count or -1. */
static ssize_t
sasl_read_all(int fd, char *buf, size_t bufsz)
{
	size_t	got = 0;
	ssize_t	n;

	while (got < bufsz) {
		n = read(fd, buf + got, bufsz - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Takes the password, the first line of the <n> octets of <buf>. */
static char *
sasl_pass_line(const char *path, const char *buf, size_t n, char *err,
    size_t errsz)
{
	const char	*nl;
	size_t		 len;
	char		*pass;

	if (n > SASL_PASSFILE_MAX) {
		str_errf(err, errsz, "%s is over %d octets: it should hold "
		    "only the password", path, SASL_PASSFILE_MAX);
		return NULL;
	}
	nl = memchr(buf, '\n', n);
	len = nl != NULL ? (size_t)(nl - buf) : n;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len == 0) {
		str_errf(err, errsz, "the first line of %s is empty", path);
		return NULL;
	}
	if (memchr(buf, '\0', len) != NULL) {
		str_errf(err, errsz, "%s holds a NUL byte", path);
		return NULL;
	}
	pass = xmalloc(len + 1);
	memcpy(pass, buf, len);
	pass[len] = '\0';
	return pass;
}

char *
sasl_read_password(const char *path, char *err, size_t errsz)
{
	char		 buf[SASL_PASSFILE_MAX + 1];
	char		*pass = NULL;
	struct stat	 st;
	ssize_t		 n;
	int		 fd;

	/* O_NOFOLLOW: a symlink could point the daemon anywhere.
	 * O_NONBLOCK: a FIFO must not hang the start-up; it is refused
	 * by the fstat() check just after.  Checking the open fd, not the
	 * path, leaves no window for a swap between check and read. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1) {
		if (errno == ELOOP)
			str_errf(err, errsz, "%s is a symbolic link: name "
			    "the file itself", path);
		else
			str_errf(err, errsz, "cannot open %s: %s", path,
			    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		str_errf(err, errsz, "cannot stat %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (sasl_pass_check(path, &st, err, errsz) == -1)
		goto fail;
	/* One octet more than allowed tells a file that grew after the
	 * fstat() from one that is exactly at the limit. */
	if ((n = sasl_read_all(fd, buf, sizeof(buf))) == -1) {
		str_errf(err, errsz, "cannot read %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	pass = sasl_pass_line(path, buf, (size_t)n, err, errsz);
fail:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return pass;
}
