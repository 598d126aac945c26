/*
 * maildrop.c - the maildrop file format, shared by the injector that
 * writes it and the daemon's pickup (daemon/pickup.c) that reads it.
 *
 * File format: a text header, each line ending in LF, then the message:
 *
 *	smartrelay-maildrop 1
 *	uid 1000
 *	sender alice@example.org		("<>": the null sender)
 *	rcpt bob@example.org			(one line per recipient)
 *	size 00000000000000001234		(always 20 digits)
 *	<empty line>
 *	<exactly "size" octets of message, lines ending in LF or CRLF>
 *
 * Addresses are xtext (RFC 3461 section 4, with '<' and '>' encoded too
 * so that only the null sender reads "<>").  The uid line is what the
 * writer claims; the daemon believes only the file's owner.
 *
 * Security: the directory is 01733, so any local user may create a file
 * in it but none may list it, or remove or rename another's file.  Files
 * are mode 0644 so that the daemon's user can read them; their random
 * 128-bit names are the secret that keeps other users out.  The daemon
 * treats every file as hostile: no symlinks, no FIFOs (opened
 * non-blocking), no hard links, bounded sizes, the same content rules as
 * SMTP.  Rejected files are moved to corrupt/ and no failure report is
 * sent: the injector checks the same rules first and reports to its
 * caller, so only forged or damaged files end there.
 *
 * Durability: a message is committed to the spool before its maildrop
 * file is removed; a crash in between delivers it twice, never zero times.
 */
#include "config.h"

#include "maildrop.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "util.h"
#include "xtext.h"

#define MAILDROP_MAGIC		"smartrelay-maildrop 1"
#define MAILDROP_NUM_WIDTH	20	/* digits of UINT64_MAX */
/* "sender " or "rcpt " and the longest xtext address, with the LF. */
#define MAILDROP_LINE_MAX	(16 + 3 * (SMTP_ADDR_BUFSZ - 1))

/*
 * The format.
 */

static bool
maildrop_addr_is_ok(const char *s, bool allow_empty)
{
	size_t	i, len = strlen(s);

	if ((len == 0 && !allow_empty) || len > SMTP_ADDR_BUFSZ - 1)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return false;
	return true;
}

char *
maildrop_format(const struct maildrop_env *env, size_t *len)
{
	char	*out, *p;
	size_t	 i, cap;

	if (env->nrcpt == 0 || env->sender == NULL ||
	    !maildrop_addr_is_ok(env->sender, true)) {
		errno = EINVAL;
		return NULL;
	}
	for (i = 0; i < env->nrcpt; i++)
		if (!maildrop_addr_is_ok(env->rcpts[i], false)) {
			errno = EINVAL;
			return NULL;
		}
	cap = maildrop_header_max(env->nrcpt);
	p = out = xmalloc(cap);
	p += snprintf(p, cap, MAILDROP_MAGIC "\nuid %lu\nsender ", env->uid);
	if (env->sender[0] == '\0') {
		memcpy(p, "<>", 2);
		p += 2;
	} else
		p = xtext_put(p, env->sender);
	for (i = 0; i < env->nrcpt; i++) {
		memcpy(p, "\nrcpt ", 6);
		p = xtext_put(p + 6, env->rcpts[i]);
	}
	p += snprintf(p, cap - (size_t)(p - out), "\nsize %0*" PRIu64 "\n\n",
	    MAILDROP_NUM_WIDTH, env->size);
	*len = (size_t)(p - out);
	return out;
}

size_t
maildrop_header_max(size_t max_rcpts)
{
	/* The magic, uid and size lines share the first line's room. */
	return (max_rcpts + 3) * MAILDROP_LINE_MAX;
}

/* Decodes xtext <s>/<len> into a new string; NULL when malformed or when
 * the address would not pass maildrop_addr_is_ok(). */
static char *
maildrop_xtext_get(const char *s, size_t len)
{
	char	*out = xtext_decode(s, len);

	if (out != NULL && !maildrop_addr_is_ok(out, false)) {
		free(out);
		return NULL;
	}
	return out;
}

/* The next LF-terminated line of at most MAILDROP_LINE_MAX octets at
 * *pos (before <end>), without its LF.  Advances *pos. */
static bool
maildrop_next_line(const char **pos, const char *end, const char **line,
    size_t *len)
{
	size_t		 avail = (size_t)(end - *pos);
	const char	*lf;

	if (avail > MAILDROP_LINE_MAX)
		avail = MAILDROP_LINE_MAX;
	if ((lf = memchr(*pos, '\n', avail)) == NULL)
		return false;
	*line = *pos;
	*len = (size_t)(lf - *pos);
	*pos = lf + 1;
	return true;
}

/* True when <line> is "<key> <value>"; the value goes to <val>/<vlen>. */
static bool
maildrop_key(const char *line, size_t len, const char *key, const char **val,
    size_t *vlen)
{
	size_t	klen = strlen(key);

	if (len <= klen || memcmp(line, key, klen) != 0 || line[klen] != ' ')
		return false;
	*val = line + klen + 1;
	*vlen = len - klen - 1;
	return true;
}

static bool
maildrop_number(const char *s, size_t len, uint64_t *out)
{
	uint64_t	v = 0, d;
	size_t		i;

	if (len == 0 || len > MAILDROP_NUM_WIDTH)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

int
maildrop_parse(const char *buf, size_t len, uint64_t total, size_t max_rcpts,
    struct maildrop_env *env, size_t *hdrlen, const char **reason)
{
	const char	*pos = buf, *end = buf + len, *line, *val;
	size_t		 llen, vlen;
	uint64_t	 n;
	char		*addr;

	memset(env, 0, sizeof(*env));
	*reason = "bad-magic";
	if (!maildrop_next_line(&pos, end, &line, &llen) ||
	    llen != strlen(MAILDROP_MAGIC) ||
	    memcmp(line, MAILDROP_MAGIC, llen) != 0)
		goto fail;
	*reason = "bad-uid";
	if (!maildrop_next_line(&pos, end, &line, &llen) ||
	    !maildrop_key(line, llen, "uid", &val, &vlen) ||
	    !maildrop_number(val, vlen, &n) || n > ULONG_MAX)
		goto fail;
	env->uid = (unsigned long)n;
	*reason = "bad-sender";
	if (!maildrop_next_line(&pos, end, &line, &llen) ||
	    !maildrop_key(line, llen, "sender", &val, &vlen))
		goto fail;
	if (vlen == 2 && memcmp(val, "<>", 2) == 0)
		env->sender = xstrdup("");
	else if ((env->sender = maildrop_xtext_get(val, vlen)) == NULL)
		goto fail;
	for (;;) {
		*reason = "truncated";
		if (!maildrop_next_line(&pos, end, &line, &llen))
			goto fail;
		if (!maildrop_key(line, llen, "rcpt", &val, &vlen))
			break;
		*reason = "too-many-rcpts";
		if (env->nrcpt >= max_rcpts)
			goto fail;
		*reason = "bad-rcpt";
		if ((addr = maildrop_xtext_get(val, vlen)) == NULL)
			goto fail;
		env->rcpts = xrealloc(env->rcpts,
		    (env->nrcpt + 1) * sizeof(*env->rcpts));
		env->rcpts[env->nrcpt++] = addr;
	}
	*reason = env->nrcpt == 0 ? "no-rcpt" : "bad-size";
	if (env->nrcpt == 0 || !maildrop_key(line, llen, "size", &val, &vlen) ||
	    !maildrop_number(val, vlen, &env->size))
		goto fail;
	*reason = "no-end";
	if (!maildrop_next_line(&pos, end, &line, &llen) || llen != 0)
		goto fail;
	*hdrlen = (size_t)(pos - buf);
	*reason = "size-mismatch";
	if (env->size > total || total - env->size != *hdrlen)
		goto fail;
	*reason = NULL;
	return 0;
fail:
	maildrop_env_cleanup(env);
	return -1;
}

void
maildrop_env_cleanup(struct maildrop_env *env)
{
	size_t	i;

	for (i = 0; i < env->nrcpt; i++)
		free(env->rcpts[i]);
	free(env->rcpts);
	free(env->sender);
	memset(env, 0, sizeof(*env));
}

/*
 * Canonical lines.
 */

void
maildrop_canon_init(struct maildrop_canon *c, uint64_t max_size,
    uint64_t initial_size)
{
	/* Not SMTP-framed: a dot is content, "." ends nothing. */
	smtp_data_init_plain(&c->data, max_size, initial_size);
}

enum smtp_data_err
maildrop_canon_line(struct maildrop_canon *c, const char *line, size_t len,
    const char **out, size_t *outlen)
{
	*out = line;
	*outlen = 0;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (smtp_data_line(&c->data, line, len, true, out, outlen) ==
	    SMTP_DATA_END)
		fatalx("maildrop: end of data in a plain message");
	return c->data.err;
}

enum smtp_data_err
maildrop_canon_piece(struct maildrop_canon *c, const char *piece, size_t len,
    const char **out, size_t *outlen)
{
	smtp_data_piece(&c->data, piece, len, out, outlen);
	return c->data.err;
}
