/*
 * log.h - one event per line, "key=value" style, to stderr or syslog.
 *
 * On stderr each line starts with a journald priority prefix ("<6>") so
 * that systemd files it at the right level; on a terminal the prefix is
 * replaced by a timestamp for humans.  Never pass secrets to these.
 */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Chooses the destination.  Before log_init() everything goes to
 * stderr at info level.  <ident> is the syslog identity. */
void	log_init(bool use_syslog, enum log_level level, const char *ident);
void	log_set_level(enum log_level level);

/* Parses "err", "warn", "notice", "info", "debug".  Returns -1 on any
 * other name. */
int	log_level_parse(const char *name, enum log_level *out);

bool	log_is_debug(void);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_notice(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_errx(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Log at error level (fatal adds strerror(errno)) and exit(EX_SOFTWARE
 * for fatalx, EX_OSERR for fatal). */
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif /* LOG_H */
