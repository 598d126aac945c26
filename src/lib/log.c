/*
 * log.c - one event per line to stderr (journald priority prefixes, or
 * a timestamp on a terminal) or to syslog.
 *
 * Every line is emitted with a single write(2) so lines from the spool's
 * worker thread never interleave with the main thread's.
 */
#include "config.h"

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

static bool		log_syslog;
static bool		log_tty;
static enum log_level	log_level = LOG_LEVEL_INFO;

static const struct {
	const char	*name;
	int		 prio;		/* syslog(3) and journald priority */
} log_levels[] = {
	[LOG_LEVEL_ERR] =	{ "err",	LOG_ERR },
	[LOG_LEVEL_WARN] =	{ "warn",	LOG_WARNING },
	[LOG_LEVEL_NOTICE] =	{ "notice",	LOG_NOTICE },
	[LOG_LEVEL_INFO] =	{ "info",	LOG_INFO },
	[LOG_LEVEL_DEBUG] =	{ "debug",	LOG_DEBUG },
};

void
log_init(bool use_syslog, enum log_level level, const char *ident)
{
	log_level = level;
	log_tty = isatty(STDERR_FILENO) == 1 && getenv("JOURNAL_STREAM") == NULL;
	if (use_syslog && !log_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	else if (!use_syslog && log_syslog)
		closelog();
	log_syslog = use_syslog;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

int
log_level_parse(const char *name, enum log_level *out)
{
	size_t	i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (strcmp(name, log_levels[i].name) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

bool
log_is_debug(void)
{
	return log_level >= LOG_LEVEL_DEBUG;
}

static void log_vemit(enum log_level, const char *, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

static void
log_vemit(enum log_level level, const char *errstr, const char *fmt,
    va_list ap)
{
	char		 line[2048];
	struct tm	 tm;
	time_t		 now;
	int		 off = 0, n;

	if (level > log_level)
		return;
	if (log_syslog) {
		n = vsnprintf(line, sizeof(line), fmt, ap);
		if (n < 0)
			return;
		if (errstr != NULL)
			syslog(log_levels[level].prio, "%s: %s", line, errstr);
		else
			syslog(log_levels[level].prio, "%s", line);
		return;
	}
	if (log_tty) {
		now = time(NULL);
		localtime_r(&now, &tm);
		off = (int)strftime(line, sizeof(line), "%H:%M:%S ", &tm);
	} else
		off = snprintf(line, sizeof(line), "<%d>",
		    log_levels[level].prio);
	n = vsnprintf(line + off, sizeof(line) - (size_t)off, fmt, ap);
	if (n < 0)
		return;
	off += n;
	if ((size_t)off >= sizeof(line) - 2)
		off = (int)sizeof(line) - 2;
	if (errstr != NULL) {
		n = snprintf(line + off, sizeof(line) - (size_t)off,
		    ": %s", errstr);
		off += n;
		if ((size_t)off >= sizeof(line) - 2)
			off = (int)sizeof(line) - 2;
	}
	line[off++] = '\n';
	/* One write per line: lines from two threads never mix. */
	if (write(STDERR_FILENO, line, (size_t)off) == -1)
		return;
}

#define LOG_DEFINE(name, level)						\
void									\
name(const char *fmt, ...)						\
{									\
	va_list	ap;							\
									\
	va_start(ap, fmt);						\
	log_vemit(level, NULL, fmt, ap);				\
	va_end(ap);							\
}

LOG_DEFINE(log_warnx, LOG_LEVEL_WARN)
LOG_DEFINE(log_notice, LOG_LEVEL_NOTICE)
LOG_DEFINE(log_info, LOG_LEVEL_INFO)
LOG_DEFINE(log_debug, LOG_LEVEL_DEBUG)
LOG_DEFINE(log_errx, LOG_LEVEL_ERR)

void
log_warn(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_WARN, strerror(saved), fmt, ap);
	va_end(ap);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERR, strerror(saved), fmt, ap);
	va_end(ap);
	exit(EX_OSERR);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERR, NULL, fmt, ap);
	va_end(ap);
	exit(EX_SOFTWARE);
}
