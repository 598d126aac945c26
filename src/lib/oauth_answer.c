/*
 * oauth_answer.c - the pure parts of XOAUTH2 support: the token
 * endpoint's answer, parsed once with the strict reader of json.c and
 * classified (RFC 6749 §5.1, §5.2), and the atomic write of a refresh
 * token file.  Every string taken from the answer may be a secret: it
 * is wiped before it is freed (json_free() wipes the tree).
 */
#include "config.h"

#include "oauth_answer.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>


#include "json.h"
#include "log.h"
#include "util.h"

#define OAUTH_MAX_LIFE		86400	/* trust expires_in up to a day */

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

/* The string member <key> of <o>: 1 with a copy in *out (the caller
 * wipes it), 0 when absent, -1 when of another type. */
static int
oauth_member_str(const struct json *o, const char *key, char **out)
{
	const struct json	*v = json_get(o, key);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (v->type != JSON_STR)
		return -1;
	*out = xstrdup(v->str);
	return 1;
}

/* Reads the members of a 200 answer into <a>. */
static enum oauth_status
oauth_parse_ok(const struct json *doc, struct oauth_answer *a)
{
	const struct json	*ex = json_get(doc, "expires_in");
	const char		*type = json_str(doc, "token_type");
	char			*end;
	long long		 n;

	if (oauth_member_str(doc, "access_token", &a->access_token) != 1 ||
	    !oauth_is_token(a->access_token)) {
		snprintf(a->reason, sizeof(a->reason), "the token endpoint's "
		    "answer holds no usable access_token");
		return OAUTH_TEMPORARY;
	}
	if (oauth_member_str(doc, "refresh_token", &a->refresh_token) == -1 ||
	    (a->refresh_token != NULL && !oauth_is_token(a->refresh_token)) ||
	    (json_get(doc, "token_type") != NULL && type == NULL) ||
	    (ex != NULL && ex->type != JSON_NUM && ex->type != JSON_STR)) {
		snprintf(a->reason, sizeof(a->reason), "malformed answer "
		    "from the token endpoint");
		return OAUTH_TEMPORARY;
	}
	if (type != NULL && strcasecmp(type, "Bearer") != 0) {
		snprintf(a->reason, sizeof(a->reason), "the token endpoint "
		    "issued a token of another type than Bearer");
		return OAUTH_TEMPORARY;
	}
	if (ex != NULL) {
		/* As written (some endpoints send a string): an
		 * integer, nothing else. */
		errno = 0;
		n = strtoll(ex->str, &end, 10);
		if (errno != 0 || *end != '\0' || ex->str[0] == '-' || n <= 0) {
			snprintf(a->reason, sizeof(a->reason), "bad "
			    "expires_in from the token endpoint");
			return OAUTH_TEMPORARY;
		}
		a->expires_in = n > OAUTH_MAX_LIFE ? OAUTH_MAX_LIFE : n;
	}
	return OAUTH_OK;
}

/* Reads an error answer (RFC 6749 §5.2) into a->reason. */
static enum oauth_status
oauth_parse_error(int code, const struct json *doc, struct oauth_answer *a)
{
	static const char *const	 creds[] = { "invalid_grant",
	    "invalid_client", "unauthorized_client", "invalid_scope" };
	const char			*err = json_str(doc, "error");
	const char			*desc = json_str(doc, "error_description");
	char				 e[64], d[256];
	enum oauth_status		 st = OAUTH_TEMPORARY;
	size_t				 i;

	if (err == NULL || (desc == NULL &&
	    json_get(doc, "error_description") != NULL)) {
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
		st = OAUTH_REJECTED_GRANT;
	else if (st == OAUTH_REJECTED && (strcmp(err, "invalid_client") == 0 ||
	    strcmp(err, "unauthorized_client") == 0))
		st = OAUTH_REJECTED_CLIENT;
	if (st == OAUTH_REJECTED_GRANT)
		snprintf(a->reason, sizeof(a->reason), "OAuth refresh token "
		    "rejected (invalid_grant%s%s): run smartrelayctl "
		    "oauth-setup to re-consent", d[0] ? ": " : "", d);
	else if (st >= OAUTH_REJECTED)
		snprintf(a->reason, sizeof(a->reason), "OAuth client "
		    "rejected (%s%s%s): check oauth_client_id and the "
		    "client secret file", e, d[0] ? ": " : "", d);
	else
		snprintf(a->reason, sizeof(a->reason), "the token endpoint "
		    "answered HTTP %d (%s%s%s)", code, e, d[0] ? ": " : "", d);
	return st;
}

/* The body is parsed once; one that is not a JSON object reads as an
 * object without members. */
enum oauth_status
oauth_parse_answer(int code, const char *body, size_t len,
    struct oauth_answer *a)
{
	struct json	doc;

	a->http_code = code;
	a->expires_in = -1;
	a->reason[0] = '\0';
	if (json_parse(body, len, &doc) == -1)
		memset(&doc, 0, sizeof(doc));
	if (code == 200)
		a->status = oauth_parse_ok(&doc, a);
	else
		a->status = oauth_parse_error(code, &doc, a);
	json_free(&doc);
	if (a->status != OAUTH_OK) {
		str_wipe_free(a->access_token);
		str_wipe_free(a->refresh_token);
		a->access_token = a->refresh_token = NULL;
	}
	return a->status;
}

void
oauth_answer_clear(struct oauth_answer *a)
{
	str_wipe_free(a->access_token);
	str_wipe_free(a->refresh_token);
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
	if (fsync_parent_dir(path) == -1) {
		snprintf(err, errsz, "cannot sync the directory of %s: %s",
		    path, strerror(errno));
		return -1;
	}
	return 0;
}
