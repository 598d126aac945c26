/*
 * spool.c - the durable on-disk queue (layout in spool.h).
 *
 * Invariants: a message is queued iff queue/<id>.env exists; its data
 * file queue/<id>.msg is renamed in before it and never rewritten; an
 * envelope is only ever replaced whole, by rename(2).  The commit worker
 * thread touches only the messages handed to it and the two lists under
 * the lock; every other function runs on the caller's (main) thread.
 * No sockets and no event loop here.
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
 * or "-".  Control bytes in free text are written as spaces.  The last
 * line is exactly "end".  A file without it, with an unknown or repeated
 * key, a bad number, no id, sender or rcpt, or an id other than its file
 * name is corrupt.
 */
#include "config.h"

#include "spool.h"

#include <sys/queue.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define SPOOL_BUF_SIZE	(64 * 1024)	/* data write buffer per message */
#define SPOOL_ENV_MAX	(4 * 1024 * 1024) /* largest envelope file */
#define SPOOL_LINE_MAX	8192		/* longest envelope line */
#define SPOOL_FIELD_MAX	1024		/* address, helo, client octets */
#define SPOOL_TEXT_MAX	2048		/* error and reply octets kept */
#define SPOOL_DSN_MAX	32
#define SPOOL_NAME_MAX	(SPOOL_ID_LEN + 16)	/* "<id>.env.xxxxxxxx" */
#define SPOOL_ID_TRIES	100
#define SPOOL_NWORKERS	1		/* the worker loop allows more */

struct spool_msg {
	STAILQ_ENTRY(spool_msg)	 entry;
	struct spool		*sp;
	struct spool_env	 env;		/* id, sender, rcpts, ... */
	size_t			 rcptcap;
	int			 fd;		/* tmp/<id>.msg, or -1 */
	char			*buf;		/* SPOOL_BUF_SIZE octets */
	size_t			 buflen;
	uint64_t		 size;
	int			 err;		/* first write error, or 0 */
	int			 result;	/* commit result, errno or 0 */
	spool_done_cb		 done;
	void			*arg;
};
STAILQ_HEAD(spool_msgq, spool_msg);

struct spool {
	char			*dir;		/* absolute path */
	int			 tmpfd;
	int			 queuefd;
	int			 failedfd;
	int			 corruptfd;
	int			 notify[2];	/* worker -> spool_dispatch() */
	unsigned int		 seed;		/* mixed into ids */
	atomic_uint		 counter;
	pthread_mutex_t		 lock;		/* guards the fields below */
	pthread_cond_t		 cond;
	struct spool_msgq	 pending;	/* waiting for a worker */
	struct spool_msgq	 done;		/* waiting for dispatch */
	bool			 stopping;
	pthread_t		 workers[SPOOL_NWORKERS];
	size_t			 nworkers;
};

/* A growing text buffer for envelopes. */
struct spool_sb {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

static const char *const spool_state_names[] = {
	[SPOOL_RCPT_PENDING] = "pending",
	[SPOOL_RCPT_SENT] = "sent",
	[SPOOL_RCPT_FAILED] = "failed",
};

static void	spool_sb_printf(struct spool_sb *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/*
 * Small helpers: names, ids, text buffers, whole writes.
 */

/* Ids become file names: only exactly 16 lowercase hex digits pass, so
 * an id from a control command can never name another file. */
static bool
spool_id_is_valid(const char *s)
{
	size_t	i;

	for (i = 0; i < SPOOL_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[SPOOL_ID_LEN] == '\0';
}

/* "<id><suffix>" into <buf> of SPOOL_NAME_MAX octets. */
static char *
spool_name(char *buf, const char *id, const char *suffix)
{
	snprintf(buf, SPOOL_NAME_MAX, "%.*s%s", SPOOL_ID_LEN, id, suffix);
	return buf;
}

/* Splits "<id><suffix>" into <id>; -1 if <name> is not of that form. */
static int
spool_name_parse(const char *name, char *id, const char *suffix)
{
	if (strlen(name) != SPOOL_ID_LEN + strlen(suffix) ||
	    strcmp(name + SPOOL_ID_LEN, suffix) != 0)
		return -1;
	memcpy(id, name, SPOOL_ID_LEN);
	id[SPOOL_ID_LEN] = '\0';
	return spool_id_is_valid(id) ? 0 : -1;
}

/* 11 hex digits of milliseconds since the epoch (good for 557 years;
 * microseconds would wrap every 203 days) then 5 of a per-process
 * counter offset by a random seed: sorted ids are roughly in arrival
 * order, and O_EXCL catches the rare clash. */
static void
spool_id_make(struct spool *sp, char *id)
{
	struct timespec	ts;
	uint64_t	ms;
	unsigned int	low;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	low = (sp->seed + atomic_fetch_add(&sp->counter, 1)) & 0xfffff;
	snprintf(id, SPOOL_ID_LEN + 1, "%011" PRIx64 "%05x",
	    ms & UINT64_C(0xfffffffffff), low);
}

/* Appends <len> octets, keeping the buffer NUL-terminated. */
static void
spool_sb_add(struct spool_sb *sb, const char *s, size_t len)
{
	if (sb->len + len + 1 > sb->cap) {
		sb->cap = (sb->len + len + 1) * 2;
		sb->p = xrealloc(sb->p, sb->cap);
	}
	memcpy(sb->p + sb->len, s, len);
	sb->len += len;
	sb->p[sb->len] = '\0';
}

static void
spool_sb_printf(struct spool_sb *sb, const char *fmt, ...)
{
	char	buf[256];
	va_list	ap;
	int	n;

	/* Only numbers and short tokens come through here. */
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		fatalx("spool_sb_printf: overflow");
	spool_sb_add(sb, buf, (size_t)n);
}

/* Appends <s> as xtext (RFC 3461 section 4). */
static void
spool_sb_xtext(struct spool_sb *sb, const char *s)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*p;
	char			 enc[3];

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p >= '!' && *p <= '~' && *p != '+' && *p != '=')
			spool_sb_add(sb, (const char *)p, 1);
		else {
			enc[0] = '+';
			enc[1] = hex[*p >> 4];
			enc[2] = hex[*p & 0xf];
			spool_sb_add(sb, enc, 3);
		}
	}
}

/* Appends free text, control bytes as spaces, at most SPOOL_TEXT_MAX. */
static void
spool_sb_text(struct spool_sb *sb, const char *s)
{
	size_t		i;
	unsigned char	c;

	for (i = 0; s[i] != '\0' && i < SPOOL_TEXT_MAX; i++) {
		c = (unsigned char)s[i];
		spool_sb_add(sb, c < 0x20 || c == 0x7f ? " " : &s[i], 1);
	}
}

/* write(2) may be short on a nearly full disk or past RLIMIT_FSIZE; the
 * next call then reports why, and that errno is what the caller sees. */
static int
spool_write_all(int fd, const char *p, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Creates <dirfd>/<name> (O_EXCL) holding <sb>, fsynced and closed.
 * On failure the file is gone again and errno is that of the failure. */
static int
spool_file_write(int dirfd, const char *name, const struct spool_sb *sb)
{
	int	fd, saved;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	if (fd == -1)
		return -1;
	if (spool_write_all(fd, sb->p, sb->len) == -1 || fsync(fd) == -1) {
		saved = errno;
		close(fd);
		unlinkat(dirfd, name, 0);
		errno = saved;
		return -1;
	}
	if (close(fd) == -1) {
		saved = errno;
		unlinkat(dirfd, name, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

/* A fresh DIR stream on the directory <dirfd> refers to. */
static DIR *
spool_dir_open(int dirfd)
{
	DIR	*d;
	int	 fd;

	if ((fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1)
		return NULL;
	if ((d = fdopendir(fd)) == NULL)
		close(fd);
	return d;
}

/*
 * Envelopes: writing.
 */

/* The bound keeps every envelope line under SPOOL_LINE_MAX even when
 * xtext triples its length, so whatever we write loads again. */
static bool
spool_field_is_valid(const char *s, bool allow_empty)
{
	return s != NULL && (allow_empty || s[0] != '\0') &&
	    strlen(s) <= SPOOL_FIELD_MAX;
}

/* A DSN is written only if it is a short token; anything else is "-". */
static bool
spool_dsn_is_valid(const char *s)
{
	size_t	i;

	if (s == NULL || s[0] == '\0' || strcmp(s, "-") == 0)
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (i >= SPOOL_DSN_MAX || s[i] < '!' || s[i] > '~')
			return false;
	return true;
}

/* Formats <env> into <sb>.  Returns -1 (EINVAL) for an envelope that
 * would not load again. */
static int
spool_env_format(const struct spool_env *env, struct spool_sb *sb)
{
	const struct spool_rcpt	*r;
	size_t			 i;

	if (!spool_id_is_valid(env->id) || env->arrival < 0 ||
	    env->next_attempt < 0 || env->nrcpt == 0 ||
	    !spool_field_is_valid(env->sender, true) ||
	    (env->client != NULL && !spool_field_is_valid(env->client, true)) ||
	    (env->helo != NULL && !spool_field_is_valid(env->helo, true)))
		goto inval;
	spool_sb_printf(sb, "smartrelay-envelope 1\nid %s\narrival %" PRId64
	    "\nsize %" PRIu64 "\nclient ", env->id, env->arrival, env->size);
	spool_sb_xtext(sb, env->client != NULL ? env->client : "");
	spool_sb_add(sb, "\nhelo ", 6);
	spool_sb_xtext(sb, env->helo != NULL ? env->helo : "");
	spool_sb_add(sb, "\nsender ", 8);
	if (env->sender[0] == '\0')
		spool_sb_add(sb, "<>", 2);
	else if (strcmp(env->sender, "<>") == 0)
		spool_sb_add(sb, "+3C+3E", 6);	/* not the null sender */
	else
		spool_sb_xtext(sb, env->sender);
	spool_sb_printf(sb, "\nattempts %u\nnext %" PRId64 "\nheld %d\n",
	    env->attempts, env->next_attempt, env->held ? 1 : 0);
	if (env->last_error != NULL && env->last_error[0] != '\0') {
		spool_sb_add(sb, "error ", 6);
		spool_sb_text(sb, env->last_error);
		spool_sb_add(sb, "\n", 1);
	}
	for (i = 0; i < env->nrcpt; i++) {
		r = &env->rcpts[i];
		if (!spool_field_is_valid(r->addr, false) ||
		    (unsigned int)r->state >= nitems(spool_state_names))
			goto inval;
		spool_sb_printf(sb, "rcpt %s %s ", spool_state_names[r->state],
		    spool_dsn_is_valid(r->dsn) ? r->dsn : "-");
		spool_sb_xtext(sb, r->addr);
		if (r->reply != NULL && r->reply[0] != '\0') {
			spool_sb_add(sb, " ", 1);
			spool_sb_text(sb, r->reply);
		}
		spool_sb_add(sb, "\n", 1);
	}
	spool_sb_add(sb, "end\n", 4);
	if (sb->len <= SPOOL_ENV_MAX)
		return 0;
inval:
	errno = EINVAL;
	return -1;
}

/*
 * Envelopes: reading.  Every check fails softly: garbage is "corrupt".
 */

static int
spool_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes xtext <s> into a new string; NULL if malformed or empty. */
static char *
spool_xtext_decode(const char *s)
{
	char	*out, *o;
	int	 hi, lo;

	if (s[0] == '\0')
		return NULL;
	out = o = xmalloc(strlen(s) + 1);
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			goto bad;
		if (*s != '+') {
			*o++ = *s;
			continue;
		}
		if ((hi = spool_hexval(s[1])) == -1 ||
		    (lo = spool_hexval(s[2])) == -1 || (hi | lo) == 0)
			goto bad;
		*o++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* Digits only, at most <max>. */
static int
spool_parse_num(const char *s, uint64_t max, uint64_t *out)
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
spool_text_dup(const char *s)
{
	char	*out = xstrdup(s), *p;

	for (p = out; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return out;
}

/* "STATE DSN ADDR [REPLY]" in place.  Returns NULL or why it is bad. */
static const char *
spool_env_rcpt(struct spool_env *env, char *v)
{
	struct spool_rcpt	 r = { NULL, SPOOL_RCPT_PENDING, NULL, NULL };
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
	for (i = 0; i < nitems(spool_state_names); i++)
		if (strcmp(v, spool_state_names[i]) == 0)
			break;
	if (i == nitems(spool_state_names))
		return "rcpt-state";
	if (!spool_dsn_is_valid(dsn) && strcmp(dsn, "-") != 0)
		return "rcpt-dsn";
	if ((r.addr = spool_xtext_decode(addr)) == NULL)
		return "rcpt-address";
	r.state = (enum spool_rcpt_state)i;
	r.dsn = strcmp(dsn, "-") == 0 ? NULL : xstrdup(dsn);
	r.reply = reply != NULL && reply[0] != '\0' ? spool_text_dup(reply) :
	    NULL;
	env->rcpts = xrealloc(env->rcpts, (env->nrcpt + 1) * sizeof(r));
	env->rcpts[env->nrcpt++] = r;
	return NULL;
}

enum spool_key {
	SPOOL_K_ID, SPOOL_K_ARRIVAL, SPOOL_K_SIZE, SPOOL_K_CLIENT,
	SPOOL_K_HELO, SPOOL_K_SENDER, SPOOL_K_ATTEMPTS, SPOOL_K_NEXT,
	SPOOL_K_HELD, SPOOL_K_ERROR, SPOOL_K_RCPT,
};

static const char *const spool_keys[] = {
	"id", "arrival", "size", "client", "helo", "sender", "attempts",
	"next", "held", "error", "rcpt",
};

/* Stores the value <v> of key <k>.  Returns NULL or why it is bad. */
static const char *
spool_env_value(struct spool_env *env, enum spool_key k, char *v)
{
	uint64_t	 n;
	char		**str = k == SPOOL_K_CLIENT ? &env->client :
			    k == SPOOL_K_HELO ? &env->helo : &env->sender;

	if (k != SPOOL_K_ERROR && k != SPOOL_K_RCPT && strchr(v, ' ') != NULL)
		return "not-a-token";
	switch (k) {
	case SPOOL_K_ID:
		if (!spool_id_is_valid(v))
			return "bad-id";
		memcpy(env->id, v, SPOOL_ID_LEN + 1);
		return NULL;
	case SPOOL_K_CLIENT:
	case SPOOL_K_HELO:
	case SPOOL_K_SENDER:
		if (k == SPOOL_K_SENDER && strcmp(v, "<>") == 0)
			*str = xstrdup("");
		else if (k != SPOOL_K_SENDER && v[0] == '\0')
			*str = xstrdup("");
		else if ((*str = spool_xtext_decode(v)) == NULL)
			return "bad-xtext";
		return NULL;
	case SPOOL_K_ERROR:
		env->last_error = spool_text_dup(v);
		return NULL;
	case SPOOL_K_RCPT:
		return spool_env_rcpt(env, v);
	default:
		break;
	}
	if (spool_parse_num(v, k == SPOOL_K_HELD ? 1 : k == SPOOL_K_ATTEMPTS ?
	    UINT_MAX : k == SPOOL_K_SIZE ? UINT64_MAX : INT64_MAX, &n) == -1)
		return "bad-number";
	if (k == SPOOL_K_ARRIVAL)
		env->arrival = (int64_t)n;
	else if (k == SPOOL_K_SIZE)
		env->size = n;
	else if (k == SPOOL_K_ATTEMPTS)
		env->attempts = (unsigned int)n;
	else if (k == SPOOL_K_NEXT)
		env->next_attempt = (int64_t)n;
	else
		env->held = n == 1;
	return NULL;
}

/* Parses one line (no LF, NUL-terminated, writable).  <seen> tracks
 * single-valued keys.  Returns NULL or why it is bad. */
static const char *
spool_env_line(struct spool_env *env, char *line, unsigned int *seen)
{
	char	*v;
	size_t	 k;

	if ((v = strchr(line, ' ')) != NULL)
		*v++ = '\0';
	else
		v = line + strlen(line);
	for (k = 0; k < nitems(spool_keys); k++)
		if (strcmp(line, spool_keys[k]) == 0)
			break;
	if (k == nitems(spool_keys))
		return "unknown-key";
	if (k != SPOOL_K_RCPT) {
		if (*seen & (1u << k))
			return "repeated-key";
		*seen |= 1u << k;
	}
	return spool_env_value(env, (enum spool_key)k, v);
}

/* Parses the envelope text <buf> of <len> octets, named <id>. */
static const char *
spool_env_parse(struct spool_env *env, const char *buf, size_t len,
    const char *id, size_t *lineno)
{
	char		 line[SPOOL_LINE_MAX + 1];
	const char	*p = buf, *end = buf + len, *eol, *why;
	unsigned int	 seen = 0;
	size_t		 n;

	for (*lineno = 1; p < end; (*lineno)++, p = eol + 1) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return "no-end";
		if ((n = (size_t)(eol - p)) > SPOOL_LINE_MAX)
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
			if ((seen & (1u << SPOOL_K_ID)) == 0 ||
			    (seen & (1u << SPOOL_K_SENDER)) == 0 ||
			    env->nrcpt == 0)
				return "missing-key";
			return strcmp(env->id, id) == 0 ? NULL : "id-mismatch";
		} else if ((why = spool_env_line(env, line, &seen)) != NULL)
			return why;
	}
	return "no-end";
}

/* Reads queue/<id>.env whole into a new buffer.  The size is bounded
 * before anything is allocated; a file that grows while we read it is
 * not one we wrote (envelopes are replaced by rename), so it fails. */
static char *
spool_env_read(struct spool *sp, const char *id, size_t *len)
{
	char		 name[SPOOL_NAME_MAX], *buf;
	struct stat	 st;
	ssize_t		 n = 0;
	int		 fd, saved = 0;

	spool_name(name, id, ".env");
	fd = openat(sp->queuefd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1)
		return NULL;
	if (fstat(fd, &st) == -1)
		saved = errno;
	else if (!S_ISREG(st.st_mode))
		saved = EINVAL;
	else if (st.st_size > SPOOL_ENV_MAX)
		saved = EFBIG;
	if (saved != 0) {
		close(fd);
		errno = saved;
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	*len = 0;
	while (*len <= (size_t)st.st_size) {	/* one more: EOF or grown */
		n = read(fd, buf + *len, (size_t)st.st_size + 1 - *len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
	saved = errno;
	close(fd);
	if (n == -1 || *len > (size_t)st.st_size) {
		free(buf);
		errno = n == -1 ? saved : EAGAIN;
		return NULL;
	}
	return buf;
}

int
spool_env_load(struct spool *sp, const char *id, struct spool_env *env)
{
	const char	*why;
	char		*buf;
	size_t		 len, lineno;

	memset(env, 0, sizeof(*env));
	if (!spool_id_is_valid(id)) {
		log_warnx("spool envelope load: invalid id");
		errno = EINVAL;
		return -1;
	}
	if ((buf = spool_env_read(sp, id, &len)) == NULL) {
		log_warn("spool envelope load id=%s", id);
		return -1;
	}
	why = spool_env_parse(env, buf, len, id, &lineno);
	free(buf);
	if (why != NULL) {
		log_warnx("spool envelope corrupt id=%s line=%zu reason=%s",
		    id, lineno, why);
		spool_env_cleanup(env);
		errno = EINVAL;
		return -1;
	}
	if (env->client == NULL)
		env->client = xstrdup("");
	if (env->helo == NULL)
		env->helo = xstrdup("");
	return 0;
}

void
spool_env_cleanup(struct spool_env *env)
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

int
spool_env_save(struct spool *sp, const struct spool_env *env)
{
	struct spool_sb	 sb = { NULL, 0, 0 };
	char		 tmp[SPOOL_NAME_MAX], name[SPOOL_NAME_MAX];
	int		 tries, rc = -1, saved;

	if (spool_env_format(env, &sb) == -1) {
		log_warnx("spool envelope save id=%.*s: invalid envelope",
		    SPOOL_ID_LEN, env->id);
		errno = EINVAL;
		goto done;
	}
	spool_name(name, env->id, ".env");
	for (tries = 0; tries < SPOOL_ID_TRIES; tries++) {
		snprintf(tmp, sizeof(tmp), "%.*s.env.%08x", SPOOL_ID_LEN,
		    env->id, (sp->seed + atomic_fetch_add(&sp->counter, 1)) &
		    0xffffffffu);
		if ((rc = spool_file_write(sp->tmpfd, tmp, &sb)) == 0 ||
		    errno != EEXIST)
			break;
	}
	if (rc == 0 && (renameat(sp->tmpfd, tmp, sp->queuefd, name) == -1 ||
	    fsync(sp->queuefd) == -1)) {
		saved = errno;
		unlinkat(sp->tmpfd, tmp, 0);
		errno = saved;
		rc = -1;
	}
	if (rc == -1)
		log_warn("spool envelope save id=%s", env->id);
done:
	free(sb.p);
	return rc;
}

/*
 * Messages being written.
 */

struct spool_msg *
spool_msg_new(struct spool *sp, const char *sender, const char *client,
    const char *helo)
{
	struct spool_msg	*msg;
	struct stat		 st;
	char			 name[SPOOL_NAME_MAX];
	int			 tries, fd = -1;

	if (!spool_field_is_valid(sender, true) ||
	    !spool_field_is_valid(client != NULL ? client : "", true) ||
	    !spool_field_is_valid(helo != NULL ? helo : "", true)) {
		log_warnx("spool new message: field too long");
		errno = EINVAL;
		return NULL;
	}
	/*
	 * The file is created now, on the caller's thread, so that a full
	 * or broken disk shows up before the client sends its data.
	 */
	msg = xcalloc(1, sizeof(*msg));
	for (tries = 0; tries < SPOOL_ID_TRIES && fd == -1; tries++) {
		spool_id_make(sp, msg->env.id);
		spool_name(name, msg->env.id, ".msg");
		fd = openat(sp->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (fd == -1 && errno != EEXIST)
			break;
		/* The id must not be taken in queue/ either. */
		if (fd != -1 && fstatat(sp->queuefd, name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0) {
			close(fd);
			unlinkat(sp->tmpfd, name, 0);
			fd = -1;
			errno = EEXIST;
		}
	}
	if (fd == -1) {
		log_warn("spool new message: create tmp/%s", name);
		free(msg);
		return NULL;
	}
	msg->sp = sp;
	msg->fd = fd;
	msg->buf = xmalloc(SPOOL_BUF_SIZE);
	msg->env.sender = xstrdup(sender);
	msg->env.client = xstrdup(client != NULL ? client : "");
	msg->env.helo = xstrdup(helo != NULL ? helo : "");
	msg->env.arrival = time_wall();
	return msg;
}

const char *
spool_msg_id(const struct spool_msg *msg)
{
	return msg->env.id;
}

int
spool_msg_add_rcpt(struct spool_msg *msg, const char *rcpt)
{
	struct spool_rcpt	*r;

	if (!spool_field_is_valid(rcpt, false)) {
		errno = EINVAL;
		return -1;
	}
	if (msg->env.nrcpt == msg->rcptcap) {
		msg->rcptcap = msg->rcptcap == 0 ? 4 : msg->rcptcap * 2;
		msg->env.rcpts = xrealloc(msg->env.rcpts,
		    msg->rcptcap * sizeof(*r));
	}
	r = &msg->env.rcpts[msg->env.nrcpt++];
	r->addr = xstrdup(rcpt);
	r->state = SPOOL_RCPT_PENDING;
	r->dsn = NULL;
	r->reply = NULL;
	return 0;
}

/* Writes out the buffer; a failure sticks to the message. */
static int
spool_msg_flush(struct spool_msg *msg)
{
	if (msg->err == 0 && msg->buflen > 0 &&
	    spool_write_all(msg->fd, msg->buf, msg->buflen) == -1)
		msg->err = errno;
	msg->buflen = 0;
	if (msg->err == 0)
		return 0;
	errno = msg->err;
	return -1;
}

/* Memory stays at one buffer per message whatever its size: each full
 * buffer goes to the page cache at once, and the commit's fsync waits
 * for the disk. */
int
spool_msg_write(struct spool_msg *msg, const void *data, size_t len)
{
	const char	*p = data;
	size_t		 n;

	while (msg->err == 0 && len > 0) {
		n = SPOOL_BUF_SIZE - msg->buflen;
		if (n > len)
			n = len;
		memcpy(msg->buf + msg->buflen, p, n);
		msg->buflen += n;
		msg->size += n;
		p += n;
		len -= n;
		if (msg->buflen == SPOOL_BUF_SIZE)
			spool_msg_flush(msg);
	}
	if (msg->err == 0)
		return 0;
	errno = msg->err;
	return -1;
}

uint64_t
spool_msg_size(const struct spool_msg *msg)
{
	return msg->size;
}

static void
spool_msg_free(struct spool_msg *msg)
{
	if (msg->fd != -1)
		close(msg->fd);
	free(msg->buf);
	spool_env_cleanup(&msg->env);
	free(msg);
}

void
spool_abort(struct spool_msg *msg)
{
	char	name[SPOOL_NAME_MAX];

	if (msg == NULL)
		return;
	spool_name(name, msg->env.id, ".msg");
	if (unlinkat(msg->sp->tmpfd, name, 0) == -1 && errno != ENOENT)
		log_warn("spool abort id=%s", msg->env.id);
	spool_msg_free(msg);
}

/*
 * Commits.  The same code runs on the worker and, for spool_commit(), on
 * the caller's thread.
 */

/* Takes every file of <msg> out of tmp/ and queue/ again. */
static void
spool_msg_unlink(struct spool_msg *msg)
{
	struct spool	*sp = msg->sp;
	char		 data[SPOOL_NAME_MAX], env[SPOOL_NAME_MAX];

	spool_name(data, msg->env.id, ".msg");
	spool_name(env, msg->env.id, ".env");
	/* Envelope first: without it the data is no message. */
	unlinkat(sp->queuefd, env, 0);
	unlinkat(sp->queuefd, data, 0);
	unlinkat(sp->tmpfd, env, 0);
	unlinkat(sp->tmpfd, data, 0);
}

/* The per-message half of a commit: data synced and closed, envelope
 * written and synced, both renamed into queue/ (data first, since the
 * envelope's arrival there is the commit point).  Returns 0 or an errno
 * value; on failure nothing of the message is left behind. */
static int
spool_msg_stage(struct spool_msg *msg)
{
	struct spool	*sp = msg->sp;
	struct spool_sb	 sb = { NULL, 0, 0 };
	char		 data[SPOOL_NAME_MAX], env[SPOOL_NAME_MAX];
	const char	*step;
	int		 fd = msg->fd, err;

	spool_name(data, msg->env.id, ".msg");
	spool_name(env, msg->env.id, ".env");
	msg->env.size = msg->size;
	step = "write";
	err = spool_msg_flush(msg);
	msg->fd = -1;			/* <fd> is closed below */
	if (err == -1)
		goto fail;
	step = "fsync";
	if (fsync(fd) == -1)
		goto fail;
	step = "close";
	err = close(fd);
	fd = -1;
	if (err == -1)
		goto fail;
	step = "envelope";
	if (spool_env_format(&msg->env, &sb) == -1 ||
	    spool_file_write(sp->tmpfd, env, &sb) == -1)
		goto fail;
	step = "rename";
	if (renameat(sp->tmpfd, data, sp->queuefd, data) == -1 ||
	    renameat(sp->tmpfd, env, sp->queuefd, env) == -1)
		goto fail;
	free(sb.p);
	return 0;
fail:
	err = errno;
	log_warn("spool commit failed id=%s step=%s", msg->env.id, step);
	if (fd != -1)
		close(fd);
	free(sb.p);
	spool_msg_unlink(msg);
	return err;
}

/* Commits the messages in <batch>, setting each one's result; all the
 * staged ones share one fsync of queue/. */
static void
spool_commit_batch(struct spool *sp, struct spool_msgq *batch)
{
	struct spool_msg	*msg;
	size_t			 staged = 0;
	int			 err;

	STAILQ_FOREACH(msg, batch, entry)
		if ((msg->result = spool_msg_stage(msg)) == 0)
			staged++;
	if (staged == 0 || fsync(sp->queuefd) == 0)
		return;
	/*
	 * The renames may not survive a power cut.  Take the messages out
	 * again and fail them: the clients get a 4xx and resend, so at
	 * worst a message is delivered twice, which we prefer to answering
	 * 250 for one that could be lost.
	 */
	err = errno;
	log_warn("spool commit: fsync queue/ failed, %zu messages rejected",
	    staged);
	STAILQ_FOREACH(msg, batch, entry)
		if (msg->result == 0) {
			spool_msg_unlink(msg);
			msg->result = err;
		}
}

int
spool_commit(struct spool_msg *msg)
{
	struct spool_msgq	batch = STAILQ_HEAD_INITIALIZER(batch);
	int			err;

	STAILQ_INSERT_TAIL(&batch, msg, entry);
	spool_commit_batch(msg->sp, &batch);
	err = msg->result;
	spool_msg_free(msg);
	errno = err;
	return err == 0 ? 0 : -1;
}

void
spool_commit_start(struct spool_msg *msg, spool_done_cb done, void *arg)
{
	struct spool	*sp = msg->sp;

	/* From here on only the worker touches <msg>, until it is back on
	 * the done list for spool_dispatch(). */
	msg->done = done;
	msg->arg = arg;
	pthread_mutex_lock(&sp->lock);
	STAILQ_INSERT_TAIL(&sp->pending, msg, entry);
	pthread_cond_signal(&sp->cond);
	pthread_mutex_unlock(&sp->lock);
}

/* A commit worker: takes everything pending as one batch, commits it
 * and hands the results to spool_dispatch().  Leaves only once stopping
 * is set and nothing is pending. */
static void *
spool_worker(void *arg)
{
	struct spool		*sp = arg;
	struct spool_msgq	 batch;
	char			 c = 0;

	pthread_mutex_lock(&sp->lock);
	for (;;) {
		while (STAILQ_EMPTY(&sp->pending) && !sp->stopping)
			pthread_cond_wait(&sp->cond, &sp->lock);
		if (STAILQ_EMPTY(&sp->pending))
			break;
		STAILQ_INIT(&batch);
		STAILQ_CONCAT(&batch, &sp->pending);
		pthread_mutex_unlock(&sp->lock);
		spool_commit_batch(sp, &batch);
		pthread_mutex_lock(&sp->lock);
		STAILQ_CONCAT(&sp->done, &batch);
		/* One pending byte is enough to wake the dispatcher. */
		if (write(sp->notify[1], &c, 1) == -1 && errno != EAGAIN)
			log_warn("spool worker: notify");
	}
	pthread_mutex_unlock(&sp->lock);
	return NULL;
}

int
spool_notify_fd(const struct spool *sp)
{
	return sp->notify[0];
}

void
spool_dispatch(struct spool *sp)
{
	struct spool_msgq	 done = STAILQ_HEAD_INITIALIZER(done);
	struct spool_msg	*msg;
	char			 buf[64];
	ssize_t			 n;

	/* Drain first: a byte written after this finds its list later. */
	while ((n = read(sp->notify[0], buf, sizeof(buf))) > 0 ||
	    (n == -1 && errno == EINTR))
		;
	pthread_mutex_lock(&sp->lock);
	STAILQ_CONCAT(&done, &sp->done);
	pthread_mutex_unlock(&sp->lock);
	while ((msg = STAILQ_FIRST(&done)) != NULL) {
		STAILQ_REMOVE_HEAD(&done, entry);
		if (msg->done != NULL)
			msg->done(msg->env.id, msg->result, msg->arg);
		spool_msg_free(msg);
	}
}

/*
 * Opening, recovery, closing.
 */

/* mkdir -p, new directories mode 0700. */
static int
spool_mkdirs(const char *dir)
{
	char	*path, *p, c;
	int	 rc = 0;

	if (dir[0] == '\0') {
		errno = ENOENT;
		return -1;
	}
	path = xstrdup(dir);
	for (p = path + 1; rc == 0; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		c = *p;
		*p = '\0';
		if (mkdir(path, 0700) == -1 && errno != EEXIST)
			rc = -1;
		*p = c;
		if (c == '\0')
			break;
	}
	free(path);
	return rc;
}

static int
spool_subdir_open(int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, 0700) == -1 && errno != EEXIST)
		return -1;
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* The id part of a file name for log lines, or "-". */
static const char *
spool_log_id(const char *name, char *id)
{
	if (strlen(name) >= SPOOL_ID_LEN) {
		memcpy(id, name, SPOOL_ID_LEN);
		id[SPOOL_ID_LEN] = '\0';
		if (spool_id_is_valid(id))
			return id;
	}
	return "-";
}

/* Handles one entry of queue/ at startup.  Readdir may or may not show
 * a file that an earlier entry's handling moved, hence ENOENT is fine. */
static void
spool_recover_entry(struct spool *sp, const char *name)
{
	struct spool_env	 env;
	struct stat		 st;
	char			 id[SPOOL_ID_LEN + 1], other[SPOOL_NAME_MAX];
	char			 esc[128];
	const char		*why = NULL;

	str_log_escape(name, strlen(name), esc, sizeof(esc));
	if (spool_name_parse(name, id, ".msg") == 0) {
		if (fstatat(sp->queuefd, spool_name(other, id, ".env"), &st,
		    AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
			return;
		if (unlinkat(sp->queuefd, name, 0) == 0)
			log_warnx("spool recover remove id=%s file=queue/%s "
			    "reason=no-envelope", id, esc);
		else if (errno != ENOENT)
			log_warn("spool recover remove file=queue/%s", esc);
		return;
	}
	if (spool_name_parse(name, id, ".env") == -1)
		why = "unknown-name";
	else if (fstatat(sp->queuefd, spool_name(other, id, ".msg"), &st,
	    AT_SYMLINK_NOFOLLOW) == -1 && errno == ENOENT)
		why = "no-data";
	else if (spool_env_load(sp, id, &env) == -1)
		/* Only bad content; an I/O error may pass. */
		why = errno == EINVAL || errno == EFBIG ? "corrupt-envelope" :
		    NULL;
	else
		spool_env_cleanup(&env);
	if (why == NULL)
		return;
	if (renameat(sp->queuefd, name, sp->corruptfd, name) == -1) {
		if (errno != ENOENT)
			log_warn("spool recover quarantine file=queue/%s", esc);
		return;
	}
	log_warnx("spool recover quarantine id=%s file=queue/%s reason=%s",
	    spool_log_id(name, id), esc, why);
	if (strcmp(why, "corrupt-envelope") == 0 &&
	    renameat(sp->queuefd, other, sp->corruptfd, other) == 0)
		log_warnx("spool recover quarantine id=%s file=queue/%s "
		    "reason=%s", id, other, why);
}

/* Empties tmp/ (<queue> false) or checks every entry of queue/. */
static int
spool_recover_dir(struct spool *sp, bool queue)
{
	struct dirent	*de;
	DIR		*d;
	char		 id[SPOOL_ID_LEN + 1], esc[128];

	if ((d = spool_dir_open(queue ? sp->queuefd : sp->tmpfd)) == NULL)
		return -1;
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (de->d_name[0] == '.')	/* ".", "..", NFS leftovers */
			continue;
		if (queue) {
			spool_recover_entry(sp, de->d_name);
			continue;
		}
		str_log_escape(de->d_name, strlen(de->d_name), esc,
		    sizeof(esc));
		if (unlinkat(sp->tmpfd, de->d_name, 0) == 0)
			log_warnx("spool recover remove id=%s file=tmp/%s "
			    "reason=leftover", spool_log_id(de->d_name, id),
			    esc);
		else
			log_warn("spool recover remove file=tmp/%s", esc);
	}
	if (errno != 0) {
		closedir(d);
		return -1;
	}
	closedir(d);
	if (fsync(queue ? sp->queuefd : sp->tmpfd) == -1 ||
	    (queue && fsync(sp->corruptfd) == -1))
		return -1;
	return 0;
}

/* Starts the workers with every signal blocked: signals are for the
 * main thread. */
static int
spool_workers_start(struct spool *sp)
{
	sigset_t	all, old;
	int		rc = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (sp->nworkers < SPOOL_NWORKERS && rc == 0) {
		rc = pthread_create(&sp->workers[sp->nworkers], NULL,
		    spool_worker, sp);
		if (rc == 0)
			sp->nworkers++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = rc;
	return rc == 0 ? 0 : -1;
}

struct spool *
spool_open(const char *dir)
{
	struct spool	*sp;
	const char	*step;
	int		 dirfd = -1;

	/* Directories first, then recovery, and the worker last: it must
	 * not commit into a queue/ that is still being checked. */
	sp = xcalloc(1, sizeof(*sp));
	sp->tmpfd = sp->queuefd = sp->failedfd = sp->corruptfd = -1;
	sp->notify[0] = sp->notify[1] = -1;
	STAILQ_INIT(&sp->pending);
	STAILQ_INIT(&sp->done);
	pthread_mutex_init(&sp->lock, NULL);
	pthread_cond_init(&sp->cond, NULL);
	if (getrandom(&sp->seed, sizeof(sp->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(sp->seed))
		sp->seed = (unsigned int)getpid() * 2654435761u;
	step = "create";
	if (spool_mkdirs(dir) == -1 || (sp->dir = realpath(dir, NULL)) ==
	    NULL || (dirfd = open(sp->dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		goto fail;
	step = "subdirectories";
	if ((sp->tmpfd = spool_subdir_open(dirfd, "tmp")) == -1 ||
	    (sp->queuefd = spool_subdir_open(dirfd, "queue")) == -1 ||
	    (sp->failedfd = spool_subdir_open(dirfd, "failed")) == -1 ||
	    (sp->corruptfd = spool_subdir_open(dirfd, "corrupt")) == -1 ||
	    fsync(dirfd) == -1)
		goto fail;
	step = "recover";
	if (spool_recover_dir(sp, false) == -1 ||
	    spool_recover_dir(sp, true) == -1)
		goto fail;
	step = "worker";
	if (pipe2(sp->notify, O_CLOEXEC | O_NONBLOCK) == -1 ||
	    spool_workers_start(sp) == -1)
		goto fail;
	close(dirfd);
	return sp;
fail:
	log_warn("spool open dir=%s step=%s", dir, step);
	if (dirfd != -1)
		close(dirfd);
	spool_close(sp);
	return NULL;
}

void
spool_close(struct spool *sp)
{
	size_t	i;

	if (sp == NULL)
		return;
	/* Workers leave only once nothing is pending, so every commit
	 * started gets its callback here at the latest. */
	pthread_mutex_lock(&sp->lock);
	sp->stopping = true;
	pthread_cond_broadcast(&sp->cond);
	pthread_mutex_unlock(&sp->lock);
	for (i = 0; i < sp->nworkers; i++)
		pthread_join(sp->workers[i], NULL);
	if (sp->notify[0] != -1)
		spool_dispatch(sp);
	for (i = 0; i < 2; i++)
		if (sp->notify[i] != -1)
			close(sp->notify[i]);
	if (sp->tmpfd != -1)
		close(sp->tmpfd);
	if (sp->queuefd != -1)
		close(sp->queuefd);
	if (sp->failedfd != -1)
		close(sp->failedfd);
	if (sp->corruptfd != -1)
		close(sp->corruptfd);
	pthread_cond_destroy(&sp->cond);
	pthread_mutex_destroy(&sp->lock);
	free(sp->dir);
	free(sp);
}

long
spool_scan(struct spool *sp, void (*cb)(const struct spool_env *, void *),
    void *arg)
{
	struct spool_env	 env;
	struct dirent		*de;
	DIR			*d;
	char			 id[SPOOL_ID_LEN + 1];
	long			 n = 0;

	if ((d = spool_dir_open(sp->queuefd)) == NULL) {
		log_warn("spool scan dir=%s/queue", sp->dir);
		return -1;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		/* Only "<id>.env" names; anything else is not a message. */
		if (spool_name_parse(de->d_name, id, ".env") == -1 ||
		    spool_env_load(sp, id, &env) == -1)
			continue;
		cb(&env, arg);
		spool_env_cleanup(&env);
		n++;
	}
	if (errno != 0) {
		log_warn("spool scan dir=%s/queue", sp->dir);
		n = -1;
	}
	closedir(d);
	return n;
}

int
spool_data_path(const struct spool *sp, const char *id, char *buf,
    size_t bufsz)
{
	int	n;

	if (!spool_id_is_valid(id))
		return -1;
	n = snprintf(buf, bufsz, "%s/queue/%s.msg", sp->dir, id);
	return n < 0 || (size_t)n >= bufsz ? -1 : 0;
}

int
spool_remove(struct spool *sp, const char *id)
{
	char	data[SPOOL_NAME_MAX], env[SPOOL_NAME_MAX];
	int	rc = 0;

	if (!spool_id_is_valid(id)) {
		errno = EINVAL;
		return -1;
	}
	spool_name(data, id, ".msg");
	spool_name(env, id, ".env");
	/* A missing envelope is reported, but its data still goes. */
	if (unlinkat(sp->queuefd, env, 0) == -1) {
		log_warn("spool remove id=%s file=envelope", id);
		if (errno != ENOENT)
			return -1;
		rc = -1;
	}
	if (unlinkat(sp->queuefd, data, 0) == -1 && errno != ENOENT) {
		log_warn("spool remove id=%s file=data", id);
		rc = -1;
	}
	if (fsync(sp->queuefd) == -1) {
		log_warn("spool remove id=%s fsync", id);
		return -1;
	}
	if (rc == -1)
		errno = ENOENT;
	return rc;
}

int
spool_move_failed(struct spool *sp, const char *id)
{
	char	data[SPOOL_NAME_MAX], env[SPOOL_NAME_MAX];
	int	saved;

	if (!spool_id_is_valid(id)) {
		errno = EINVAL;
		return -1;
	}
	spool_name(data, id, ".msg");
	spool_name(env, id, ".env");
	/*
	 * Data first: a crash in between leaves an envelope without data,
	 * which startup sets aside in corrupt/, rather than data without
	 * an envelope, which startup would delete.
	 */
	if (renameat(sp->queuefd, data, sp->failedfd, data) == -1) {
		log_warn("spool move to failed/ id=%s file=data", id);
		return -1;
	}
	if (renameat(sp->queuefd, env, sp->failedfd, env) == -1) {
		saved = errno;
		log_warn("spool move to failed/ id=%s file=envelope", id);
		renameat(sp->failedfd, data, sp->queuefd, data);
		errno = saved;
		return -1;
	}
	if (fsync(sp->failedfd) == -1 || fsync(sp->queuefd) == -1) {
		log_warn("spool move to failed/ id=%s fsync", id);
		return -1;
	}
	return 0;
}
