/*
 * oauth_answer.c - the pure parts of XOAUTH2 support: a strict reader
 * for one JSON object (RFC 8259) used on the token endpoint's answer,
 * the answer's classification (RFC 6749 §5.1, §5.2), and the atomic
 * write of a refresh token file.
 *
 * The reader is bounded (depth, input length given by the caller),
 * refuses anything RFC 8259 does not allow (trailing data, bad UTF-8,
 * lone surrogates, control octets in strings) and the NUL escape.
 * Every decoded string may be a secret: it is wiped before it is freed.
 */
#include "config.h"

#include "oauth_answer.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "util.h"

#define OAUTH_JSON_DEPTH	16
#define OAUTH_MAX_LIFE		86400	/* trust expires_in up to a day */

/* ------------------------------------------------------------------ */
/* A strict JSON object reader (RFC 8259) */

struct oauth_json {
	const char	*p, *end;
	int		 depth;
};

static int	oauth_json_value(struct oauth_json *, char **str,
		    bool *is_scalar);

static void
oauth_json_ws(struct oauth_json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	    *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* Appends code point <cp> as UTF-8; surrogates and NUL are refused. */
static int
oauth_json_utf8(char *buf, size_t *n, unsigned long cp)
{
	if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return -1;
	if (cp < 0x80)
		buf[(*n)++] = (char)cp;
	else if (cp < 0x800) {
		buf[(*n)++] = (char)(0xc0 | cp >> 6);
		buf[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		buf[(*n)++] = (char)(0xe0 | cp >> 12);
		buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		buf[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		buf[(*n)++] = (char)(0xf0 | cp >> 18);
		buf[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		buf[(*n)++] = (char)(0x80 | (cp & 0x3f));
	}
	return 0;
}

/* Four hex digits after "\u"; -1 on anything else. */
static long
oauth_json_hex4(struct oauth_json *j)
{
	long	v = 0;
	int	i;

	if (j->end - j->p < 4)
		return -1;
	for (i = 0; i < 4; i++, j->p++) {
		v <<= 4;
		if (*j->p >= '0' && *j->p <= '9')
			v |= *j->p - '0';
		else if (*j->p >= 'a' && *j->p <= 'f')
			v |= *j->p - 'a' + 10;
		else if (*j->p >= 'A' && *j->p <= 'F')
			v |= *j->p - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* One escape after the backslash, decoded into <buf>. */
static int
oauth_json_escape(struct oauth_json *j, char *buf, size_t *n)
{
	static const char	 from[] = "\"\\/bfnrt";
	static const char	 to[] = "\"\\/\b\f\n\r\t";
	const char		*e;
	long			 hi, lo;

	if (j->p >= j->end)
		return -1;
	if (*j->p != 'u') {
		if ((e = strchr(from, *j->p)) == NULL || *j->p == '\0')
			return -1;
		buf[(*n)++] = to[e - from];
		j->p++;
		return 0;
	}
	j->p++;
	if ((hi = oauth_json_hex4(j)) == -1)
		return -1;
	if (hi >= 0xd800 && hi <= 0xdbff) {
		/* A high surrogate must be followed by a low one. */
		if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
			return -1;
		j->p += 2;
		if ((lo = oauth_json_hex4(j)) < 0xdc00 || lo > 0xdfff)
			return -1;
		hi = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
	}
	return oauth_json_utf8(buf, n, (unsigned long)hi);
}

/* Length of the valid UTF-8 sequence at <p> (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0. */
static size_t
oauth_json_utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t	n, i;
	unsigned long cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* A string at j->p (the opening quote); decoded into a new *out when
 * <out> is not NULL. */
static int
oauth_json_string(struct oauth_json *j, char **out)
{
	char	*buf;
	size_t	 n = 0, u;

	if (j->p >= j->end || *j->p != '"')
		return -1;
	j->p++;
	/* Decoding never makes a string longer. */
	buf = xmalloc((size_t)(j->end - j->p) + 1);
	while (j->p < j->end && *j->p != '"') {
		if ((unsigned char)*j->p < 0x20)
			goto fail;
		if (*j->p == '\\') {
			j->p++;
			if (oauth_json_escape(j, buf, &n) == -1)
				goto fail;
			continue;
		}
		u = oauth_json_utf8_len((const unsigned char *)j->p,
		    (const unsigned char *)j->end);
		if (u == 0)
			goto fail;
		memcpy(buf + n, j->p, u);
		n += u;
		j->p += u;
	}
	if (j->p >= j->end)
		goto fail;
	j->p++;
	buf[n] = '\0';
	if (out != NULL)
		*out = buf;
	else {
		OPENSSL_cleanse(buf, n);
		free(buf);
	}
	return 0;
fail:
	OPENSSL_cleanse(buf, n);
	free(buf);
	return -1;
}

static size_t
oauth_json_digits(struct oauth_json *j)
{
	size_t	n = 0;

	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		j->p++;
		n++;
	}
	return n;
}

/* A number; its text is copied into a new *out when <out> is set. */
static int
oauth_json_number(struct oauth_json *j, char **out)
{
	const char	*start = j->p;
	size_t		 n;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (oauth_json_digits(j) == 0)
		return -1;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (oauth_json_digits(j) == 0)
			return -1;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (oauth_json_digits(j) == 0)
			return -1;
	}
	if (out != NULL) {
		n = (size_t)(j->p - start);
		*out = xmalloc(n + 1);
		memcpy(*out, start, n);
		(*out)[n] = '\0';
	}
	return 0;
}

/* An object or array, skipped. */
static int
oauth_json_container(struct oauth_json *j)
{
	char	close = *j->p == '{' ? '}' : ']';
	bool	obj = close == '}', first = true, scalar;

	if (++j->depth > OAUTH_JSON_DEPTH)
		return -1;
	j->p++;
	for (;;) {
		oauth_json_ws(j);
		if (j->p < j->end && *j->p == close && first)
			break;
		if (obj) {
			if (oauth_json_string(j, NULL) == -1)
				return -1;
			oauth_json_ws(j);
			if (j->p >= j->end || *j->p++ != ':')
				return -1;
		}
		if (oauth_json_value(j, NULL, &scalar) == -1)
			return -1;
		oauth_json_ws(j);
		first = false;
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == close)
			break;
		return -1;
	}
	j->p++;
	j->depth--;
	return 0;
}

/* Any value.  A string or number goes into *str when <str> is set;
 * <is_scalar> says whether it was one (false for null and the rest). */
static int
oauth_json_value(struct oauth_json *j, char **str, bool *is_scalar)
{
	static const char *const	 lits[] = { "true", "false", "null" };
	size_t				 i, n;

	oauth_json_ws(j);
	*is_scalar = false;
	if (j->p >= j->end)
		return -1;
	if (*j->p == '"') {
		*is_scalar = true;
		return oauth_json_string(j, str);
	}
	if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
		*is_scalar = true;
		return oauth_json_number(j, str);
	}
	if (*j->p == '{' || *j->p == '[')
		return oauth_json_container(j);
	for (i = 0; i < nitems(lits); i++) {
		n = strlen(lits[i]);
		if ((size_t)(j->end - j->p) >= n &&
		    memcmp(j->p, lits[i], n) == 0) {
			j->p += n;
			return 0;
		}
	}
	return -1;
}

static void
oauth_wipe_free(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* One "key": value member; the value goes to *found when the key is
 * <key>, *kind says what it was (1 string, 2 number).  Returns 0, or -1
 * on bad syntax or a repeated <key>. */
static int
oauth_json_member(struct oauth_json *j, const char *key, char **found,
    int *kind)
{
	char	*k = NULL, *v = NULL;
	bool	 scalar, match;
	char	 first;

	if (oauth_json_string(j, &k) == -1)
		return -1;
	match = strcmp(k, key) == 0;
	free(k);
	oauth_json_ws(j);
	if (j->p >= j->end || *j->p++ != ':')
		return -1;
	oauth_json_ws(j);
	first = j->p < j->end ? *j->p : '\0';
	if (oauth_json_value(j, match ? &v : NULL, &scalar) == -1)
		return -1;
	if (!match)
		return 0;
	if (*kind != -1) {
		oauth_wipe_free(v);
		return -1;
	}
	*kind = !scalar ? 0 : first == '"' ? 1 : 2;
	*found = v;
	return 0;
}

int
oauth_json_get(const char *text, size_t len, const char *key, char **out)
{
	struct oauth_json	 j = { text, text + len, 1 };
	char			*found = NULL;
	int			 kind = -1;

	*out = NULL;
	oauth_json_ws(&j);
	if (j.p >= j.end || *j.p++ != '{')
		return -1;
	oauth_json_ws(&j);
	if (j.p < j.end && *j.p == '}')
		j.p++;
	else {
		for (;;) {
			oauth_json_ws(&j);
			if (oauth_json_member(&j, key, &found, &kind) == -1)
				goto fail;
			oauth_json_ws(&j);
			if (j.p < j.end && *j.p == ',') {
				j.p++;
				continue;
			}
			if (j.p < j.end && *j.p == '}') {
				j.p++;
				break;
			}
			goto fail;
		}
	}
	oauth_json_ws(&j);
	if (j.p != j.end)
		goto fail;
	*out = found;
	return found != NULL ? kind : 0;
fail:
	oauth_wipe_free(found);
	return -1;
}

/* ------------------------------------------------------------------ */
/* The token endpoint's answer */

static bool
oauth_is_token(const char *s)
{
	/* RFC 6749 A.12/A.17: VSCHAR; we also refuse the space, which no
	 * real token holds and which would break the XOAUTH2 string. */
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s <= 0x20 || *s > 0x7e)
			return false;
	return true;
}

/* Reads the members of a 200 answer into <a>. */
static enum oauth_status
oauth_parse_ok(const char *body, size_t len, struct oauth_answer *a)
{
	char		*type = NULL, *exp = NULL, *end;
	long long	 n;
	int		 rt, ty, ex;

	if (oauth_json_get(body, len, "access_token", &a->access_token) != 1 ||
	    !oauth_is_token(a->access_token)) {
		oauth_wipe_free(a->access_token);
		a->access_token = NULL;
		snprintf(a->reason, sizeof(a->reason), "the token endpoint's "
		    "answer holds no usable access_token");
		return OAUTH_TEMPORARY;
	}
	rt = oauth_json_get(body, len, "refresh_token", &a->refresh_token);
	ty = oauth_json_get(body, len, "token_type", &type);
	ex = oauth_json_get(body, len, "expires_in", &exp);
	if (rt == -1 || rt == 2 || ty == -1 || ty == 2 || ex == -1 ||
	    (rt == 1 && !oauth_is_token(a->refresh_token))) {
		snprintf(a->reason, sizeof(a->reason), "malformed answer "
		    "from the token endpoint");
		goto fail;
	}
	if (ty == 1 && strcasecmp(type, "Bearer") != 0) {
		snprintf(a->reason, sizeof(a->reason), "the token endpoint "
		    "issued a token of another type than Bearer");
		goto fail;
	}
	if (ex > 0) {
		errno = 0;
		n = strtoll(exp, &end, 10);
		if (errno != 0 || *end != '\0' || exp[0] == '-' || n <= 0) {
			snprintf(a->reason, sizeof(a->reason), "bad "
			    "expires_in from the token endpoint");
			goto fail;
		}
		a->expires_in = n > OAUTH_MAX_LIFE ? OAUTH_MAX_LIFE : n;
	}
	free(type);
	free(exp);
	return OAUTH_OK;
fail:
	free(type);
	free(exp);
	return OAUTH_TEMPORARY;
}

/* Reads an error answer (RFC 6749 §5.2) into a->reason. */
static enum oauth_status
oauth_parse_error(int code, const char *body, size_t len,
    struct oauth_answer *a)
{
	static const char *const	 creds[] = { "invalid_grant",
	    "invalid_client", "unauthorized_client", "invalid_scope" };
	char				*err = NULL, *desc = NULL;
	char				 e[64], d[256];
	enum oauth_status		 st = OAUTH_TEMPORARY;
	size_t				 i;

	if (oauth_json_get(body, len, "error", &err) != 1 ||
	    (oauth_json_get(body, len, "error_description", &desc) != 1 &&
	    desc != NULL)) {
		free(err);
		free(desc);
		snprintf(a->reason, sizeof(a->reason), "the token endpoint "
		    "answered HTTP %d", code);
		return OAUTH_TEMPORARY;
	}
	str_log_escape(err, strlen(err), e, sizeof(e));
	str_log_escape(desc ? desc : "", desc ? strlen(desc) : 0, d,
	    sizeof(d));
	for (i = 0; i < nitems(creds) && (code == 400 || code == 401); i++)
		if (strcmp(err, creds[i]) == 0)
			st = OAUTH_REJECTED;
	if (st == OAUTH_REJECTED && strcmp(err, "invalid_grant") == 0)
		snprintf(a->reason, sizeof(a->reason), "OAuth refresh token "
		    "rejected (invalid_grant%s%s): run smartrelayctl "
		    "oauth-setup to re-consent", d[0] ? ": " : "", d);
	else if (st == OAUTH_REJECTED)
		snprintf(a->reason, sizeof(a->reason), "OAuth client "
		    "rejected (%s%s%s): check oauth_client_id and the "
		    "client secret file", e, d[0] ? ": " : "", d);
	else
		snprintf(a->reason, sizeof(a->reason), "the token endpoint "
		    "answered HTTP %d (%s%s%s)", code, e, d[0] ? ": " : "", d);
	free(err);
	free(desc);
	return st;
}

enum oauth_status
oauth_parse_answer(int code, const char *body, size_t len,
    struct oauth_answer *a)
{
	a->http_code = code;
	a->expires_in = -1;
	a->reason[0] = '\0';
	if (code == 200)
		a->status = oauth_parse_ok(body, len, a);
	else
		a->status = oauth_parse_error(code, body, len, a);
	if (a->status != OAUTH_OK) {
		oauth_wipe_free(a->access_token);
		oauth_wipe_free(a->refresh_token);
		a->access_token = a->refresh_token = NULL;
	}
	return a->status;
}

void
oauth_answer_clear(struct oauth_answer *a)
{
	oauth_wipe_free(a->access_token);
	oauth_wipe_free(a->refresh_token);
	a->access_token = a->refresh_token = NULL;
}

/* ------------------------------------------------------------------ */
/* Writing a refresh token */

static int
oauth_write_all(int fd, const char *p, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* fsync of the directory holding <path>, so the rename is durable. */
static int
oauth_sync_dir(const char *path)
{
	char	*copy = xstrdup(path);
	int	 fd, rc = -1;

	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd != -1) {
		rc = fsync(fd);
		close(fd);
	}
	free(copy);
	return rc;
}

int
oauth_write_token(const char *path, const char *token, char *err,
    size_t errsz)
{
	char		 tmp[4096];
	struct stat	 st;
	int		 fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >=
	    (int)sizeof(tmp)) {
		snprintf(err, errsz, "%s: path too long", path);
		return -1;
	}
	/* mkstemp() makes the file 0600 whatever the umask. */
	if ((fd = mkstemp(tmp)) == -1) {
		snprintf(err, errsz, "cannot create a file next to %s: %s",
		    path, strerror(errno));
		return -1;
	}
	/* Keep the owner of the file we replace (root running oauth-setup
	 * for the daemon's user); failing that is not an error. */
	if (stat(path, &st) == 0 && fchown(fd, st.st_uid, st.st_gid) == -1)
		log_debug("oauth cannot keep the owner of %s: %s", path,
		    strerror(errno));
	if (fchmod(fd, 0600) == -1 ||
	    oauth_write_all(fd, token, strlen(token)) == -1 ||
	    oauth_write_all(fd, "\n", 1) == -1 || fsync(fd) == -1) {
		snprintf(err, errsz, "cannot write %s: %s", tmp,
		    strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		snprintf(err, errsz, "cannot replace %s: %s", path,
		    strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (oauth_sync_dir(path) == -1) {
		snprintf(err, errsz, "cannot sync the directory of %s: %s",
		    path, strerror(errno));
		return -1;
	}
	return 0;
}
