/*
 * users.c - the accounts file for inbound AUTH and password checks with
 * crypt_r(3) (the AUTH exchange itself is lib/saslstep.c).
 *
 * The file holds "name:hash" lines, as htpasswd and chpasswd -e do.
 * Every check costs exactly one crypt_r() call, against a stand-in hash
 * for names that do not exist, so response times do not reveal which
 * accounts exist.  Decoded credentials are wiped before their buffers
 * go away.  Nothing here logs: callers decide what an admin sees.
 */
#include "config.h"

#include "users.h"

#include <sys/stat.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "sasl.h"
#include "util.h"

/* Used for unknown names when the file has no account at all: the
 * sha512-crypt hash of a password nobody knows. */
#define USERS_DUMMY_HASH "$6$0123456789abcdef$ORdP.H.MtrHgUpHyjYznwtF2IlGE" \
	"TmUZ9XhhlBYqXhwFASIqkW9mpedkP0zx2orkODR7W.UA/y8DM5PZu/dGz."

struct users_entry {
	char	*name;
	char	*hash;
};

struct users {
	struct users_entry	*v;
	size_t			 n;
};

/* A NUL-terminated copy of the <len> octets at <p>. */
static char *
users_dup(const char *p, size_t len)
{
	char	*s = xmalloc(len + 1);

	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

/* A name is printable, has no space and no ':' (the field separator). */
static bool
users_name_is_valid(const char *name, size_t len)
{
	size_t	i;

	if (len == 0 || len > USERS_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char	c = (unsigned char)name[i];

		if (c <= 0x20 || c == 0x7f || c == ':')
			return false;
	}
	return true;
}

/* Whether crypt(3) knows <hash> and considers it current. */
static const char *
users_hash_problem(const char *hash)
{
	if (hash[0] != '$')
		return "not a crypt(3) hash (make one with "
		    "\"openssl passwd -6\" or mkpasswd)";
#ifdef CRYPT_CHECKSALT_AVAILABLE
	switch (crypt_checksalt(hash)) {
	case CRYPT_SALT_OK:
		break;
	case CRYPT_SALT_METHOD_LEGACY:
		return "a legacy hash method: use sha512-crypt "
		    "(\"openssl passwd -6\") or yescrypt (mkpasswd)";
	default:
		return "a hash crypt(3) does not support";
	}
#endif
	return NULL;
}

/* Adds the account of one "name:hash" line (without its LF). */
static int
users_add_line(struct users *u, const char *line, size_t len,
    const char *path, unsigned int lineno, char *err, size_t errsz)
{
	const char	*colon = memchr(line, ':', len);
	const char	*why;
	size_t		 nlen, i;
	char		*hash;

	if (colon == NULL) {
		str_errf(err, errsz, "%s:%u: expected \"name:hash\"", path,
		    lineno);
		return -1;
	}
	nlen = (size_t)(colon - line);
	if (!users_name_is_valid(line, nlen)) {
		str_errf(err, errsz, "%s:%u: bad user name", path, lineno);
		return -1;
	}
	for (i = 0; i < u->n; i++)
		if (strlen(u->v[i].name) == nlen &&
		    memcmp(u->v[i].name, line, nlen) == 0) {
			str_errf(err, errsz, "%s:%u: user \"%s\" appears "
			    "twice", path, lineno, u->v[i].name);
			return -1;
		}
	if (memchr(line, '\0', len) != NULL) {
		str_errf(err, errsz, "%s:%u: NUL byte", path, lineno);
		return -1;
	}
	hash = users_dup(colon + 1, len - nlen - 1);
	if ((why = users_hash_problem(hash)) != NULL) {
		str_errf(err, errsz, "%s:%u: %s", path, lineno, why);
		free(hash);
		return -1;
	}
	u->v = xrealloc(u->v, (u->n + 1) * sizeof(*u->v));
	u->v[u->n].name = users_dup(line, nlen);
	u->v[u->n++].hash = hash;
	return 0;
}

struct users *
users_parse(const char *text, size_t len, const char *path, char *err,
    size_t errsz)
{
	struct users	*u = xcalloc(1, sizeof(*u));
	const char	*p = text, *end = text + len, *nl;
	size_t		 llen;
	unsigned int	 lineno = 0;

	while (p < end) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		llen = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (llen > 0 && p[llen - 1] == '\r')
			llen--;
		/* Trailing blanks are an editor's, not part of a hash. */
		while (llen > 0 && (p[llen - 1] == ' ' || p[llen - 1] == '\t'))
			llen--;
		if (llen > 0 && p[0] != '#' &&
		    users_add_line(u, p, llen, path, lineno, err, errsz) ==
		    -1) {
			users_free(u);
			return NULL;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return u;
}

/* The checks of users_load() on the open file. */
static int
users_stat_check(const char *path, const struct stat *st, char *err,
    size_t errsz)
{
	if (sasl_secret_stat_check(path, st, err, errsz) == -1)
		return -1;
	if (st->st_size > USERS_FILE_MAX) {
		str_errf(err, errsz, "%s is over %d octets", path,
		    USERS_FILE_MAX);
		return -1;
	}
	return 0;
}

struct users *
users_load(const char *path, char *err, size_t errsz)
{
	struct users	*u = NULL;
	struct stat	 st;
	char		*buf = NULL;
	size_t		 got = 0;
	ssize_t		 n;
	int		 fd;

	/* As sasl_read_password(): no symlinks, no FIFO hang, and the
	 * checks apply to the descriptor that is then read. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1) {
		str_errf(err, errsz, "cannot open %s: %s", path,
		    errno == ELOOP ? "a symbolic link: name the file itself" :
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		str_errf(err, errsz, "cannot stat %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (users_stat_check(path, &st, err, errsz) == -1)
		goto fail;
	/* One octet more than allowed tells a file that grew since. */
	buf = xmalloc(USERS_FILE_MAX + 1);
	while (got < USERS_FILE_MAX + 1) {
		n = read(fd, buf + got, USERS_FILE_MAX + 1 - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			str_errf(err, errsz, "cannot read %s: %s", path,
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > USERS_FILE_MAX)
		str_errf(err, errsz, "%s is over %d octets", path,
		    USERS_FILE_MAX);
	else
		u = users_parse(buf, got, path, err, errsz);
fail:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, got);
		free(buf);
	}
	close(fd);
	return u;
}

void
users_free(struct users *u)
{
	size_t	i;

	if (u == NULL)
		return;
	for (i = 0; i < u->n; i++) {
		free(u->v[i].name);
		free(u->v[i].hash);
	}
	free(u->v);
	free(u);
}

size_t
users_count(const struct users *u)
{
	return u->n;
}

const char *
users_lookup(const struct users *u, const char *name, bool *known)
{
	size_t	i;

	for (i = 0; i < u->n; i++)
		if (strcmp(u->v[i].name, name) == 0) {
			*known = true;
			return u->v[i].hash;
		}
	/* An unknown name costs the same: hash the password with the
	 * setting of a real account (the cost of most files' method). */
	*known = false;
	return u->n > 0 ? u->v[0].hash : USERS_DUMMY_HASH;
}

bool
users_hash_matches(const char *hash, const char *pass)
{
	struct crypt_data	*cd;
	const char		*out;
	bool			 ok;

	cd = xcalloc(1, sizeof(*cd));
	out = crypt_r(pass, hash, cd);
	ok = out != NULL && out[0] != '*' && strlen(out) == strlen(hash) &&
	    CRYPTO_memcmp(out, hash, strlen(hash)) == 0;
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return ok;
}

bool
users_verify(const struct users *u, const char *name, const char *pass)
{
	const char	*hash;
	bool		 known, ok;

	hash = users_lookup(u, name, &known);
	ok = users_hash_matches(hash, pass);
	return known && ok;
}
