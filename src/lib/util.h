/*
 * util.h - small helpers every module may use: allocation that never
 * returns NULL, bounded string copies, duration/size parsing.
 *
 * Out-of-memory is not a recoverable condition for a mail relay: the
 * x*alloc() family logs and exits rather than return NULL.
 */
#ifndef UTIL_H
#define UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

/* Allocate or die.  Results are owned by the caller (free()). */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);

/* Copies <src> into <dst> of <dstsz> bytes, always NUL-terminating.
 * Returns 0, or -1 if <src> did not fit (dst then holds a truncated
 * copy). */
int	 strcopy(char *dst, const char *src, size_t dstsz);

/* Case-insensitive ASCII prefix test: true when <s> starts with <prefix>. */
bool	 str_has_prefix_ci(const char *s, const char *prefix);

/* Parses a duration: digits followed by one of s, m, h, d ("90s", "5m",
 * "1h", "5d"); a bare number means seconds.  Stores seconds in <out>.
 * Returns 0, or -1 on any other form, a zero-length number or overflow. */
int	 str_parse_duration(const char *s, uint64_t *out);

/* Formats <secs> compactly ("0s", "42s", "5m", "1h30m", "2d3h") into
 * <buf>.  Returns <buf>. */
char	*str_fmt_duration(uint64_t secs, char *buf, size_t bufsz);

/* Copies <src> into <dst> for logging: bytes outside printable ASCII, '"'
 * and '\\' become \xNN.  Always NUL-terminates; truncates with "...". */
char	*str_log_escape(const char *src, size_t srclen, char *dst,
	    size_t dstsz);

/* Writes a reason for the admin into <err> (always NUL-terminated,
 * truncated to <errsz>); nothing when <err> is NULL or <errsz> 0. */
void	 str_errf(char *err, size_t errsz, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* Wipes the C string <s> (explicit_bzero: the compiler may not skip
 * it) and frees it: the one way to drop a secret (a password, a token, a
 * credential line).  NULL is a no-op. */
void	 str_wipe_free(char *s);

/* The one UTF-8 check (RFC 3629 section 4: no overlong forms, no
 * surrogates, nothing above U+10FFFF).  str_utf8_len: the length of the
 * character at <p> (<n> octets left, n > 0; 1 for ASCII), or 0 when no
 * valid character starts there.  str_is_utf8: all <n> octets are. */
size_t	 str_utf8_len(const unsigned char *p, size_t n);
bool	 str_is_utf8(const unsigned char *p, size_t n);

/* True when the string <s> has no octet over 0x7f. */
bool	 str_is_ascii(const char *s);

/* fsync() of the directory holding <path> ("." for a bare name), so a
 * rename into it is durable.  Returns 0, or -1 with errno set. */
int	 fsync_parent_dir(const char *path);

/* How time_fmt() writes a time. */
enum time_style {
	TIME_RFC5322,		/* "Tue, 14 Nov 2023 23:13:20 +0100", local */
	TIME_RFC5322_UTC,	/* "Tue, 14 Nov 2023 22:13:20 +0000" */
	TIME_ISO,		/* "2023-11-14 23:13:20 +0100", local */
	TIME_ISO_UTC,		/* "2023-11-14 22:13:20 UTC" */
	TIME_COMPACT,		/* "20231114231320", local (Message-IDs) */
	TIME_ASCTIME,		/* "Tue Nov 14 23:13:20", local (mailq) */
};

/* The one date formatter: unix time <t> in <style> into <buf>, with
 * fixed English day and month names whatever the locale (RFC 5322
 * 3.3).  A time outside years 0-9999 prints as the epoch.  Returns <buf>
 * (truncated, NUL-terminated, when <bufsz> is short: 32 always fits). */
char	*time_fmt(int64_t t, enum time_style style, char *buf, size_t bufsz);

/* Monotonic and wall clock in milliseconds / seconds. */
uint64_t time_mono_ms(void);
int64_t	 time_wall(void);

#endif /* UTIL_H */
