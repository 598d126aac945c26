/*
 * envelope.c - the envelope text format (API in envelope.h).
 *
 * Pure: memory in, memory out.  No files, no threads and no logging
 * (only fatalx() on a broken invariant); the spool reads and writes the
 * files.  The parser treats every byte as hostile and fails softly:
 * garbage is "corrupt", never a crash.
 *
 * Envelope format: text, one "key value" per line, each ending in LF.
 *
 *	smartrelay-envelope 1
 *	id 0006123abcd01f2e
 *	arrival 1795000000
 *	size 1234
 *	client 127.0.0.1
 *	helo client.example
 *	sender alice@example.org
 *	attempts 0
 *	next 0
 *	held 0
 *	reencode 1				(optional line)
 *	error some text to end of line		(optional line)
 *	rcpt pending - bob@example.org
 *	rcpt failed 5.1.1 dan@example.org 550 5.1.1 no such user here
 *	end
 *
 * Values are single tokens, except "error" and the reply that ends a
 * "rcpt" line, which run to the end of the line.  sender, rcpt
 * addresses, client and helo are xtext (RFC 3461 section 4: any byte
 * outside '!'..'~', and '+' and '=', becomes "+XX"), so they never hold
 * a space; the null sender is written "<>".  A rcpt line is
 * "rcpt STATE DSN ADDR [REPLY]", STATE pending|sent|failed, DSN "5.1.1"
 * or "-".  "reencode 1" says the data has lines over 998 octets, bare
 * CRs or NULs, to be re-encoded before relaying (issue 13); it is
 * written only then, so other envelopes read the same as before.  Control bytes in free text are written as spaces.  The last
 * line is exactly "end".  A file without it, with an unknown or repeated
 * key, a bad number, no id, sender or rcpt, or an id other than its file
 * name is corrupt.
 */
#include "config.h"

#include "envelope.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "util.h"
#include "xtext.h"

#define ENVELOPE_LINE_MAX	8192	/* longest envelope line */
#define ENVELOPE_TEXT_MAX	2048	/* error and reply octets kept */
#define ENVELOPE_DSN_MAX	32

enum envelope_key {
	ENVELOPE_K_ID, ENVELOPE_K_ARRIVAL, ENVELOPE_K_SIZE, ENVELOPE_K_CLIENT,
	ENVELOPE_K_HELO, ENVELOPE_K_SENDER, ENVELOPE_K_ATTEMPTS,
	ENVELOPE_K_NEXT, ENVELOPE_K_HELD, ENVELOPE_K_ERROR, ENVELOPE_K_RCPT,
	ENVELOPE_K_REENCODE,
};

static const char *const envelope_keys[] = {
	"id", "arrival", "size", "client", "helo", "sender", "attempts",
	"next", "held", "error", "rcpt", "reencode",
};

static const char *const envelope_state_names[] = {
	[ENVELOPE_RCPT_PENDING] = "pending",
	[ENVELOPE_RCPT_SENT] = "sent",
	[ENVELOPE_RCPT_FAILED] = "failed",
};

/*
 * Validation and building, shared by both directions.
 */

bool
envelope_id_is_valid(const char *s)
{
	size_t	i;

	for (i = 0; i < ENVELOPE_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[ENVELOPE_ID_LEN] == '\0';
}

/* The bound keeps every envelope line under ENVELOPE_LINE_MAX even when
 * xtext triples its length, so whatever we write parses again. */
bool
envelope_field_is_valid(const char *s, bool allow_empty)
{
	return s != NULL && (allow_empty || s[0] != '\0') &&
	    strlen(s) <= ENVELOPE_FIELD_MAX;
}

/* A DSN is written only if it is a short token; anything else is "-". */
static bool
envelope_dsn_is_valid(const char *s)
{
	size_t	i;

	if (s == NULL || s[0] == '\0' || strcmp(s, "-") == 0)
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (i >= ENVELOPE_DSN_MAX || s[i] < '!' || s[i] > '~')
			return false;
	return true;
}

/* Appends <r>, whose strings <env> now owns. */
static void
envelope_rcpt_append(struct envelope *env, const struct envelope_rcpt *r)
{
	env->rcpts = xrealloc(env->rcpts, (env->nrcpt + 1) * sizeof(*r));
	env->rcpts[env->nrcpt++] = *r;
}

int
envelope_add_rcpt(struct envelope *env, const char *addr)
{
	struct envelope_rcpt	r = { NULL, ENVELOPE_RCPT_PENDING, NULL, NULL };

	if (!envelope_field_is_valid(addr, false)) {
		errno = EINVAL;
		return -1;
	}
	r.addr = xstrdup(addr);
	envelope_rcpt_append(env, &r);
	return 0;
}

size_t
envelope_requeue(struct envelope *env, int64_t now)
{
	struct envelope_rcpt	*rc;
	size_t			 i, n = 0;

	for (i = 0; i < env->nrcpt; i++) {
		rc = &env->rcpts[i];
		if (rc->state != ENVELOPE_RCPT_FAILED)
			continue;
		rc->state = ENVELOPE_RCPT_PENDING;
		free(rc->dsn);
		free(rc->reply);
		rc->dsn = rc->reply = NULL;
		n++;
	}
	env->arrival = now;
	env->attempts = 0;
	env->next_attempt = 0;
	env->held = false;
	free(env->last_error);
	env->last_error = NULL;
	return n;
}

/*
 * Writing.
 */

/* Appends <s> as xtext (RFC 3461 section 4). */
static void
envelope_put_xtext(struct buf *sb, const char *s)
{
	char	*enc = xmalloc(3 * strlen(s) + 1);

	buf_add(sb, enc, (size_t)(xtext_put(enc, s) - enc));
	free(enc);
}

/* Appends free text, control bytes as spaces, at most ENVELOPE_TEXT_MAX
 * octets. */
static void
envelope_put_text(struct buf *sb, const char *s)
{
	size_t		i;
	unsigned char	c;

	for (i = 0; s[i] != '\0' && i < ENVELOPE_TEXT_MAX; i++) {
		c = (unsigned char)s[i];
		buf_add(sb, c < 0x20 || c == 0x7f ? " " : &s[i], 1);
	}
}

/* Appends the rcpt lines.  Returns -1 for an invalid recipient. */
static int
envelope_format_rcpts(const struct envelope *env, struct buf *sb)
{
	const struct envelope_rcpt	*r;
	size_t				 i;

	for (i = 0; i < env->nrcpt; i++) {
		r = &env->rcpts[i];
		if (!envelope_field_is_valid(r->addr, false) ||
		    (unsigned int)r->state >= nitems(envelope_state_names))
			return -1;
		buf_printf(sb, "rcpt %s %s ",
		    envelope_state_names[r->state],
		    envelope_dsn_is_valid(r->dsn) ? r->dsn : "-");
		envelope_put_xtext(sb, r->addr);
		if (r->reply != NULL && r->reply[0] != '\0') {
			buf_add(sb, " ", 1);
			envelope_put_text(sb, r->reply);
		}
		buf_add(sb, "\n", 1);
	}
	return 0;
}

int
envelope_format(const struct envelope *env, char **out, size_t *outlen)
{
	struct buf	sb = BUF_INIT;

	*out = NULL;
	*outlen = 0;
	if (!envelope_id_is_valid(env->id) || env->arrival < 0 ||
	    env->next_attempt < 0 || env->nrcpt == 0 ||
	    !envelope_field_is_valid(env->sender, true) ||
	    (env->client != NULL &&
	    !envelope_field_is_valid(env->client, true)) ||
	    (env->helo != NULL && !envelope_field_is_valid(env->helo, true)))
		goto inval;
	buf_printf(&sb, "smartrelay-envelope 1\nid %s\narrival %"
	    PRId64 "\nsize %" PRIu64 "\nclient ", env->id, env->arrival,
	    env->size);
	envelope_put_xtext(&sb, env->client != NULL ? env->client : "");
	buf_add(&sb, "\nhelo ", 6);
	envelope_put_xtext(&sb, env->helo != NULL ? env->helo : "");
	buf_add(&sb, "\nsender ", 8);
	if (env->sender[0] == '\0')
		buf_add(&sb, "<>", 2);
	else if (strcmp(env->sender, "<>") == 0)
		buf_add(&sb, "+3C+3E", 6); /* not the null sender */
	else
		envelope_put_xtext(&sb, env->sender);
	buf_printf(&sb, "\nattempts %u\nnext %" PRId64 "\nheld %d\n",
	    env->attempts, env->next_attempt, env->held ? 1 : 0);
	if (env->reencode)
		buf_add(&sb, "reencode 1\n", 11);
	if (env->last_error != NULL && env->last_error[0] != '\0') {
		buf_add(&sb, "error ", 6);
		envelope_put_text(&sb, env->last_error);
		buf_add(&sb, "\n", 1);
	}
	if (envelope_format_rcpts(env, &sb) == -1)
		goto inval;
	buf_add(&sb, "end\n", 4);
	if (sb.len <= ENVELOPE_MAX) {
		*out = buf_steal(&sb, outlen);
		return 0;
	}
inval:
	buf_free(&sb);
	errno = EINVAL;
	return -1;
}

/*
 * Reading.  Every check fails softly: garbage is "corrupt".
 */

/* Decodes xtext <s> into a new string; NULL if malformed or empty. */
static char *
envelope_xtext_decode(const char *s)
{
	return s[0] != '\0' ? xtext_decode(s, strlen(s)) : NULL;
}

/* Digits only, at most <max>. */
static int
envelope_parse_num(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t	n = 0, d;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		d = (uint64_t)(*s - '0');
		if (d > max || n > (max - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*out = n;
	return 0;
}

/* Copies free text, turning control bytes into spaces. */
static char *
envelope_text_dup(const char *s)
{
	char	*out = xstrdup(s), *p;

	for (p = out; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return out;
}

/* "STATE DSN ADDR [REPLY]" in place.  Returns NULL or why it is bad. */
static const char *
envelope_parse_rcpt(struct envelope *env, char *v)
{
	struct envelope_rcpt	 r = { NULL, ENVELOPE_RCPT_PENDING, NULL,
				    NULL };
	char			*dsn, *addr, *reply;
	size_t			 i;

	if ((dsn = strchr(v, ' ')) == NULL)
		return "rcpt-syntax";
	*dsn++ = '\0';
	if ((addr = strchr(dsn, ' ')) == NULL)
		return "rcpt-syntax";
	*addr++ = '\0';
	if ((reply = strchr(addr, ' ')) != NULL)
		*reply++ = '\0';
	for (i = 0; i < nitems(envelope_state_names); i++)
		if (strcmp(v, envelope_state_names[i]) == 0)
			break;
	if (i == nitems(envelope_state_names))
		return "rcpt-state";
	if (!envelope_dsn_is_valid(dsn) && strcmp(dsn, "-") != 0)
		return "rcpt-dsn";
	if ((r.addr = envelope_xtext_decode(addr)) == NULL)
		return "rcpt-address";
	if (!envelope_field_is_valid(r.addr, false)) {
		free(r.addr);
		return "rcpt-address";
	}
	r.state = (enum envelope_rcpt_state)i;
	r.dsn = strcmp(dsn, "-") == 0 ? NULL : xstrdup(dsn);
	r.reply = reply != NULL && reply[0] != '\0' ?
	    envelope_text_dup(reply) : NULL;
	envelope_rcpt_append(env, &r);
	return NULL;
}

/* Stores the value <v> of key <k>.  Returns NULL or why it is bad. */
static const char *
envelope_parse_value(struct envelope *env, enum envelope_key k, char *v)
{
	uint64_t	 n;
	char		**str = k == ENVELOPE_K_CLIENT ? &env->client :
			    k == ENVELOPE_K_HELO ? &env->helo : &env->sender;

	if (k != ENVELOPE_K_ERROR && k != ENVELOPE_K_RCPT &&
	    strchr(v, ' ') != NULL)
		return "not-a-token";
	switch (k) {
	case ENVELOPE_K_ID:
		if (!envelope_id_is_valid(v))
			return "bad-id";
		memcpy(env->id, v, ENVELOPE_ID_LEN + 1);
		return NULL;
	case ENVELOPE_K_CLIENT:
	case ENVELOPE_K_HELO:
	case ENVELOPE_K_SENDER:
		if (k == ENVELOPE_K_SENDER && strcmp(v, "<>") == 0)
			*str = xstrdup("");
		else if (k != ENVELOPE_K_SENDER && v[0] == '\0')
			*str = xstrdup("");
		else if ((*str = envelope_xtext_decode(v)) == NULL)
			return "bad-xtext";
		/* What format would refuse to write back must not load:
		 * every later save of this envelope would fail. */
		if (strlen(*str) > ENVELOPE_FIELD_MAX)
			return "field-too-long";
		return NULL;
	case ENVELOPE_K_ERROR:
		env->last_error = envelope_text_dup(v);
		return NULL;
	case ENVELOPE_K_RCPT:
		return envelope_parse_rcpt(env, v);
	default:
		break;
	}
	if (envelope_parse_num(v, k == ENVELOPE_K_HELD ||
	    k == ENVELOPE_K_REENCODE ? 1 :
	    k == ENVELOPE_K_ATTEMPTS ? UINT_MAX : k == ENVELOPE_K_SIZE ?
	    UINT64_MAX : INT64_MAX, &n) == -1)
		return "bad-number";
	if (k == ENVELOPE_K_ARRIVAL)
		env->arrival = (int64_t)n;
	else if (k == ENVELOPE_K_SIZE)
		env->size = n;
	else if (k == ENVELOPE_K_ATTEMPTS)
		env->attempts = (unsigned int)n;
	else if (k == ENVELOPE_K_NEXT)
		env->next_attempt = (int64_t)n;
	else if (k == ENVELOPE_K_REENCODE)
		env->reencode = n == 1;
	else
		env->held = n == 1;
	return NULL;
}

/* Parses one line (no LF, NUL-terminated, writable).  <seen> tracks
 * single-valued keys.  Returns NULL or why it is bad. */
static const char *
envelope_parse_line(struct envelope *env, char *line, unsigned int *seen)
{
	char	*v;
	size_t	 k;

	if ((v = strchr(line, ' ')) != NULL)
		*v++ = '\0';
	else
		v = line + strlen(line);
	for (k = 0; k < nitems(envelope_keys); k++)
		if (strcmp(line, envelope_keys[k]) == 0)
			break;
	if (k == nitems(envelope_keys))
		return "unknown-key";
	if (k != ENVELOPE_K_RCPT) {
		if (*seen & (1u << k))
			return "repeated-key";
		*seen |= 1u << k;
	}
	return envelope_parse_value(env, (enum envelope_key)k, v);
}

/* The line loop of envelope_parse().  Returns NULL or why it is bad,
 * with the line number in <lineno>. */
static const char *
envelope_parse_text(struct envelope *env, const char *buf, size_t len,
    const char *id, size_t *lineno)
{
	char		 line[ENVELOPE_LINE_MAX + 1];
	const char	*p = buf, *end = buf + len, *eol, *why;
	unsigned int	 seen = 0;
	size_t		 n;

	*lineno = 1;
	if (len > ENVELOPE_MAX)
		return "too-big";
	for (; p < end; (*lineno)++, p = eol + 1) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return "no-end";
		if ((n = (size_t)(eol - p)) > ENVELOPE_LINE_MAX)
			return "line-too-long";
		if (memchr(p, '\0', n) != NULL)
			return "nul-byte";
		memcpy(line, p, n);
		line[n] = '\0';
		if (*lineno == 1) {
			if (strcmp(line, "smartrelay-envelope 1") != 0)
				return "bad-header";
		} else if (strcmp(line, "end") == 0) {
			if (eol + 1 != end)
				return "data-after-end";
			if ((seen & (1u << ENVELOPE_K_ID)) == 0 ||
			    (seen & (1u << ENVELOPE_K_SENDER)) == 0 ||
			    env->nrcpt == 0)
				return "missing-key";
			return strcmp(env->id, id) == 0 ? NULL : "id-mismatch";
		} else if ((why = envelope_parse_line(env, line, &seen)) !=
		    NULL)
			return why;
	}
	return "no-end";
}

int
envelope_parse(struct envelope *env, const char *buf, size_t len,
    const char *expect_id, struct envelope_error *err)
{
	const char	*why;
	size_t		 lineno;

	memset(env, 0, sizeof(*env));
	if ((why = envelope_parse_text(env, buf, len, expect_id, &lineno)) !=
	    NULL) {
		envelope_cleanup(env);
		if (err != NULL) {
			err->reason = why;
			err->line = lineno;
		}
		return -1;
	}
	/* Optional keys: callers may rely on the strings being there. */
	if (env->client == NULL)
		env->client = xstrdup("");
	if (env->helo == NULL)
		env->helo = xstrdup("");
	return 0;
}

void
envelope_cleanup(struct envelope *env)
{
	size_t	i;

	for (i = 0; i < env->nrcpt; i++) {
		free(env->rcpts[i].addr);
		free(env->rcpts[i].dsn);
		free(env->rcpts[i].reply);
	}
	free(env->rcpts);
	free(env->sender);
	free(env->client);
	free(env->helo);
	free(env->last_error);
	memset(env, 0, sizeof(*env));
}
