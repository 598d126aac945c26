/*
 * quota.c - rolling 24-hour send counters for one upstream account.
 *
 * A ring of QUOTA_NBUCKETS one-minute buckets, indexed by unix minute
 * (now / 60) modulo the ring size.  A bucket is valid only while its
 * minute field matches the minute its slot stands for, so stale buckets
 * need no sweeping.  A minute's sends count until 24 h after the minute
 * ends: never released early (an early release could earn Gmail's
 * 550 5.4.5 and its day-long lock-out), at most 60 s late, and so the ring
 * holds 24 * 60 + 1 minutes.  Invariant: no bucket is later than
 * q->head, the minute of the latest record or load.
 *
 * The file, rewritten whole and renamed into place:
 *	smartrelay-quota 1
 *	last <unix seconds of the latest send>
 *	<unix minute> <messages> <recipients>	(non-empty minutes, ascending)
 *	end
 * Anything else, including a missing "end" (a torn write), is corrupt.
 */
#include "config.h"

#include "quota.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define QUOTA_WINDOW_MIN	(24 * 60)	/* counted minutes - 1 */
#define QUOTA_NBUCKETS		(QUOTA_WINDOW_MIN + 1)
#define QUOTA_MAGIC		"smartrelay-quota 1"
#define QUOTA_LINE_MAX		80		/* longest line + NUL */

struct quota_bucket {
	int64_t		 minute;
	uint32_t	 messages;
	uint32_t	 recipients;
};

struct quota {
	struct quota_limits	 limits;
	char			*path;		/* NULL: not persisted */
	char			*tmppath;	/* <path>.tmp */
	int64_t			 head;		/* latest minute recorded */
	int64_t			 last;		/* latest send, unix seconds */
	bool			 save_failed;	/* logged already */
	struct quota_bucket	 b[QUOTA_NBUCKETS];
};

/* One counted minute as the window at <now> sees it. */
struct quota_walk {
	int64_t		 leaves;	/* unix time it leaves the window */
	uint32_t	 messages;
	uint32_t	 recipients;
};

static int64_t
quota_minute(int64_t t)
{
	return t < 0 ? 0 : t / 60;
}

static uint32_t
quota_add32(uint32_t a, uint64_t b)
{
	return b >= UINT32_MAX - a ? UINT32_MAX : a + (uint32_t)b;
}

static struct quota_bucket *
quota_slot(struct quota *q, int64_t minute)
{
	return &q->b[minute % QUOTA_NBUCKETS];
}

/* Adds to <minute>'s bucket, recycling the slot if it held another. */
static void
quota_bucket_add(struct quota *q, int64_t minute, uint64_t messages,
    uint64_t recipients)
{
	struct quota_bucket	*b = quota_slot(q, minute);

	if (b->minute != minute) {
		b->minute = minute;
		b->messages = b->recipients = 0;
	}
	b->messages = quota_add32(b->messages, messages);
	b->recipients = quota_add32(b->recipients, recipients);
}

/* The <i>th (0: oldest) of the minutes up to q->head that the ring can
 * hold, or NULL if that minute has no valid, non-empty bucket. */
static const struct quota_bucket *
quota_at(const struct quota *q, int i, int64_t *minute)
{
	const struct quota_bucket	*b;
	int64_t				 m = q->head - QUOTA_WINDOW_MIN + i;

	if (m < 0)
		return NULL;
	b = &q->b[m % QUOTA_NBUCKETS];
	if (b->minute != m || (b->messages == 0 && b->recipients == 0))
		return NULL;
	*minute = m;
	return b;
}

static void
quota_clear(struct quota *q)
{
	memset(q->b, 0, sizeof(q->b));
	q->head = 0;
	q->last = 0;
}

/*
 * Fills <w> (QUOTA_NBUCKETS entries) with the minutes counted at <now>,
 * oldest first, and returns how many.  Buckets after <now>'s minute (the
 * clock stepped back since they were recorded) count as <now>'s minute.
 */
static size_t
quota_walk(const struct quota *q, int64_t now, struct quota_walk *w)
{
	const struct quota_bucket	*b;
	int64_t				 cur = quota_minute(now), m, eff;
	size_t				 n = 0;
	int				 i;

	for (i = 0; i < QUOTA_NBUCKETS; i++) {
		if ((b = quota_at(q, i, &m)) == NULL)
			continue;
		eff = m < cur ? m : cur;
		if (eff < cur - QUOTA_WINDOW_MIN)
			continue;
		w[n].leaves = (eff + QUOTA_NBUCKETS) * 60;
		w[n].messages = b->messages;
		w[n].recipients = b->recipients;
		n++;
	}
	return n;
}

struct quota *
quota_new(const struct quota_limits *limits, const char *path)
{
	struct quota	*q = xcalloc(1, sizeof(*q));
	size_t		 len;

	if (limits != NULL)
		q->limits = *limits;
	if (path != NULL) {
		q->path = xstrdup(path);
		len = strlen(path) + sizeof(".tmp");
		q->tmppath = xmalloc(len);
		snprintf(q->tmppath, len, "%s.tmp", path);
	}
	return q;
}

void
quota_free(struct quota *q)
{
	if (q == NULL)
		return;
	free(q->tmppath);
	free(q->path);
	free(q);
}

void
quota_set_limits(struct quota *q, const struct quota_limits *limits)
{
	q->limits = *limits;
}

/*
 * Parsing.
 */

/* Strict decimal: at least one digit, nothing else, at most <max>.
 * Stores the end in <endp>.  Returns 0 or -1. */
static int
quota_parse_num(const char *s, const char **endp, uint64_t max,
    uint64_t *out)
{
	uint64_t	 n = 0;
	const char	*p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (max - (uint64_t)(*p - '0')) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	*endp = p;
	*out = n;
	return 0;
}

static const struct {
	const char		*name;
	struct quota_limits	 limits;
} quota_presets[] = {
	{ "none",	{ 0, 0 } },
	{ "",		{ 0, 0 } },
	/* Gmail and Google Workspace sending limits, per rolling 24 h. */
	{ "gmail",	{ 500, 500 } },
	{ "workspace",	{ 2000, 10000 } },
};

int
quota_parse(const char *spec, struct quota_limits *out, char *err,
    size_t errsz)
{
	const char	*p, *what = "messages";
	char		 esc[44];
	uint64_t	 m, r;
	size_t		 i;

	for (i = 0; i < nitems(quota_presets); i++) {
		if (strcmp(spec, quota_presets[i].name) == 0) {
			*out = quota_presets[i].limits;
			return 0;
		}
	}
	if (*spec < '0' || *spec > '9')
		goto bad;
	if (quota_parse_num(spec, &p, QUOTA_MAX, &m) == -1 || m == 0)
		goto range;
	r = m;
	if (*p == '/') {
		what = "recipients";
		if (p[1] < '0' || p[1] > '9')
			goto bad;
		if (quota_parse_num(p + 1, &p, QUOTA_MAX, &r) == -1 || r == 0)
			goto range;
	}
	if (*p != '\0')
		goto bad;
	out->messages = (uint32_t)m;
	out->recipients = (uint32_t)r;
	return 0;
range:
	if (errsz > 0)
		snprintf(err, errsz, "quota %s must be 1 to %d", what,
		    QUOTA_MAX);
	return -1;
bad:
	/* The spec may hold any octet: escaped, the reason is one line. */
	if (errsz > 0)
		snprintf(err, errsz, "bad quota \"%s\": expected none, "
		    "gmail, workspace, N or N/M",
		    str_log_escape(spec, strlen(spec), esc, sizeof(esc)));
	return -1;
}

/*
 * Counting and deciding.
 */

void
quota_usage(const struct quota *q, int64_t now, uint64_t *messages,
    uint64_t *recipients)
{
	struct quota_walk	 w[QUOTA_NBUCKETS];
	size_t			 i, n = quota_walk(q, now, w);

	*messages = *recipients = 0;
	for (i = 0; i < n; i++) {
		*messages += w[i].messages;
		*recipients += w[i].recipients;
	}
}

/* True when <used> + <want> stays within <limit> (0: unlimited). */
static bool
quota_fits(uint64_t used, uint64_t want, uint32_t limit)
{
	return limit == 0 || used + want <= limit;
}

/* The pacing time for one limit (see quota.h), or 0 if it does not
 * pace.  <oldest> is when the oldest minute counting for it leaves. */
static int64_t
quota_pace(uint64_t used, uint64_t k, uint32_t limit, int64_t last,
    int64_t oldest)
{
	int64_t	 r, num;

	if (limit == 0 || k == 0 || oldest == 0 ||
	    used * 100 < (uint64_t)limit * QUOTA_PACE_PERCENT)
		return 0;
	/* The caller checked the fit, so 1 <= k <= r <= QUOTA_MAX. */
	r = (int64_t)(limit - used);
	num = r * last + (int64_t)k * oldest;
	return (num + r + (int64_t)k - 1) / (r + (int64_t)k);
}

int64_t
quota_next_send(const struct quota *q, int64_t now, unsigned int nrcpt)
{
	struct quota_walk	 w[QUOTA_NBUCKETS];
	uint64_t		 um = 0, ur = 0, k = nrcpt;
	int64_t			 old_m = 0, old_r = 0, last, t, tr;
	size_t			 i, n;

	if (q->limits.messages == 0 && q->limits.recipients == 0)
		return 0;
	/* Oversize: count it as the whole limit, so it fits an empty
	 * window rather than never. */
	if (q->limits.recipients != 0 && k > q->limits.recipients)
		k = q->limits.recipients;
	n = quota_walk(q, now, w);
	for (i = 0; i < n; i++) {
		if (old_m == 0 && w[i].messages > 0)
			old_m = w[i].leaves;
		if (old_r == 0 && w[i].recipients > 0)
			old_r = w[i].leaves;
		um += w[i].messages;
		ur += w[i].recipients;
	}
	/* At the limit: wait until enough of the oldest minutes leave. */
	if (!quota_fits(um, 1, q->limits.messages) ||
	    !quota_fits(ur, k, q->limits.recipients)) {
		for (i = 0; i < n; i++) {
			um -= w[i].messages;
			ur -= w[i].recipients;
			if (quota_fits(um, 1, q->limits.messages) &&
			    quota_fits(ur, k, q->limits.recipients))
				return w[i].leaves;
		}
		/* Not reached: an empty window fits any message. */
		return (quota_minute(now) + QUOTA_NBUCKETS) * 60;
	}
	/* Pacing.  A clock stepped back leaves <last> ahead of <now>. */
	last = q->last < now ? q->last : now;
	t = quota_pace(um, 1, q->limits.messages, last, old_m);
	tr = quota_pace(ur, k, q->limits.recipients, last, old_r);
	if (tr > t)
		t = tr;
	return t > now ? t : 0;
}

void
quota_status(const struct quota *q, int64_t now, struct quota_status *st)
{
	const struct quota_limits	*l = &q->limits;

	memset(st, 0, sizeof(*st));
	quota_usage(q, now, &st->messages, &st->recipients);
	st->limits = *l;
	st->next_send = quota_next_send(q, now, 1);
	st->at_limit = !quota_fits(st->messages, 1, l->messages) ||
	    !quota_fits(st->recipients, 1, l->recipients);
	st->pacing = (l->messages != 0 && st->messages * 100 >=
	    (uint64_t)l->messages * QUOTA_PACE_PERCENT) ||
	    (l->recipients != 0 && st->recipients * 100 >=
	    (uint64_t)l->recipients * QUOTA_PACE_PERCENT);
}

/*
 * Persistence.
 */

static int
quota_write(const struct quota *q, FILE *fp)
{
	const struct quota_bucket	*b;
	int64_t				 m;
	int				 i;

	fprintf(fp, "%s\nlast %" PRId64 "\n", QUOTA_MAGIC, q->last);
	for (i = 0; i < QUOTA_NBUCKETS; i++)
		if ((b = quota_at(q, i, &m)) != NULL)
			fprintf(fp, "%" PRId64 " %" PRIu32 " %" PRIu32 "\n", m,
			    b->messages, b->recipients);
	fputs("end\n", fp);
	return fflush(fp) == EOF || ferror(fp) ? -1 : 0;
}

/* Writes <tmppath> and renames it over <path>.  With <durable>, the
 * file is fsynced before the rename and the directory after.  A failure
 * is logged, only once in a row unless <durable>. */
static int
quota_save(struct quota *q, bool durable)
{
	FILE		*fp = NULL;
	const char	*step = "open";
	int		 fd, rc, saved;

	fd = open(q->tmppath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 || (fp = fdopen(fd, "w")) == NULL)
		goto fail;
	step = "write";
	if (quota_write(q, fp) == -1)
		goto fail;
	step = "fsync";
	if (durable && fsync(fileno(fp)) == -1)
		goto fail;
	step = "close";
	rc = fclose(fp);
	fp = NULL;
	if (rc == EOF)
		goto fail;
	step = "rename";
	if (rename(q->tmppath, q->path) == -1)
		goto fail;
	step = "fsync directory";
	if (durable && fsync_parent_dir(q->path) == -1)
		goto fail;
	q->save_failed = false;
	return 0;
fail:
	saved = errno;
	if (fp != NULL)
		fclose(fp);
	else if (fd != -1 && strcmp(step, "open") == 0)
		close(fd);
	unlink(q->tmppath);
	errno = saved;
	if (durable || !q->save_failed)
		log_warn("quota save path=%s step=\"%s\"", q->path, step);
	q->save_failed = true;
	return -1;
}

/* "<minute> <messages> <recipients>".  Returns 0 or -1. */
static int
quota_parse_bucket(const char *line, int64_t *minute, uint64_t *messages,
    uint64_t *recipients)
{
	const char	*p;
	uint64_t	 m;

	if (quota_parse_num(line, &p, INT64_MAX / 60, &m) == -1 ||
	    *p++ != ' ' ||
	    quota_parse_num(p, &p, UINT32_MAX, messages) == -1 ||
	    *p++ != ' ' ||
	    quota_parse_num(p, &p, UINT32_MAX, recipients) == -1 || *p != '\0')
		return -1;
	*minute = (int64_t)m;
	return 0;
}

/* Reads the file into the (cleared) counters for <now>.  Returns NULL,
 * or why the file is corrupt, with <lineno> at the offending line. */
static const char *
quota_read(struct quota *q, FILE *fp, int64_t now, int *lineno)
{
	char		 line[QUOTA_LINE_MAX];
	const char	*p;
	int64_t		 cur = quota_minute(now), prev = -1, m;
	uint64_t	 last = 0, nm, nr;
	bool		 end = false;
	size_t		 len;

	while (fgets(line, sizeof(line), fp) != NULL) {
		(*lineno)++;
		len = strlen(line);
		if (len == 0 || line[len - 1] != '\n')
			return "line too long or cut short";
		line[len - 1] = '\0';
		if (end)
			return "data after the end marker";
		if (*lineno == 1) {
			if (strcmp(line, QUOTA_MAGIC) != 0)
				return "not a quota file";
		} else if (*lineno == 2) {
			if (strncmp(line, "last ", 5) != 0 ||
			    quota_parse_num(line + 5, &p, INT64_MAX,
			    &last) == -1 || *p != '\0')
				return "bad \"last\" line";
		} else if (strcmp(line, "end") == 0) {
			end = true;
		} else {
			if (quota_parse_bucket(line, &m, &nm, &nr) == -1)
				return "bad minute line";
			if (m <= prev)
				return "minutes out of order";
			prev = m;
			/* Later than now: the clock stepped back. */
			if (m > cur)
				m = cur;
			if (m >= cur - QUOTA_WINDOW_MIN)
				quota_bucket_add(q, m, nm, nr);
			if (m * 60 > (int64_t)last)
				last = (uint64_t)(m * 60);
		}
	}
	if (ferror(fp))
		return "read error";
	if (!end)
		return "no end marker";
	q->last = (int64_t)last < now ? (int64_t)last : now;
	return NULL;
}

int
quota_load(struct quota *q, int64_t now)
{
	FILE		*fp;
	const char	*why;
	int		 lineno = 0;

	if (q->path == NULL)
		return 0;
	quota_clear(q);
	q->head = quota_minute(now);
	if ((fp = fopen(q->path, "re")) == NULL) {
		if (errno == ENOENT)
			return 0;
		log_warn("quota load path=%s", q->path);
		return -1;
	}
	why = quota_read(q, fp, now, &lineno);
	fclose(fp);
	if (why != NULL) {
		log_warnx("quota load path=%s line=%d: %s; counters reset",
		    q->path, lineno, why);
		quota_clear(q);
		q->head = quota_minute(now);
		return -1;
	}
	return 0;
}

int
quota_record(struct quota *q, int64_t now, unsigned int nrcpt)
{
	struct quota_bucket	*b;
	int64_t			 cur = quota_minute(now), m;
	uint64_t		 nm = 1, nr = nrcpt;

	/* The clock stepped back: fold the minutes after now into now's,
	 * so that no bucket is later than q->head. */
	for (m = q->head; m > cur && m > q->head - QUOTA_NBUCKETS; m--) {
		b = quota_slot(q, m);
		if (b->minute == m) {
			nm += b->messages;
			nr += b->recipients;
			b->messages = b->recipients = 0;
		}
	}
	q->head = cur;
	quota_bucket_add(q, cur, nm, nr);
	q->last = now;
	return q->path == NULL ? 0 : quota_save(q, false);
}

int
quota_sync(struct quota *q)
{
	return q->path == NULL ? 0 : quota_save(q, true);
}
