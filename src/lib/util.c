/*
 * util.c - allocation that never fails, bounded strings, durations,
 * clocks.  Nothing here knows about SMTP or the event loop.
 */
#include "config.h"

#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

void *
xmalloc(size_t n)
{
	void	*p = malloc(n == 0 ? 1 : n);

	if (p == NULL)
		fatal("malloc %zu", n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void	*p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size);

	if (p == NULL)
		fatal("calloc %zu*%zu", nmemb, size);
	return p;
}

void *
xrealloc(void *old, size_t n)
{
	void	*p = realloc(old, n == 0 ? 1 : n);

	if (p == NULL)
		fatal("realloc %zu", n);
	return p;
}

char *
xstrdup(const char *s)
{
	char	*p = strdup(s);

	if (p == NULL)
		fatal("strdup");
	return p;
}

int
strcopy(char *dst, const char *src, size_t dstsz)
{
	size_t	len = strlen(src);

	if (dstsz == 0)
		return -1;
	if (len >= dstsz) {
		memcpy(dst, src, dstsz - 1);
		dst[dstsz - 1] = '\0';
		return -1;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

bool
str_has_prefix_ci(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

int
str_parse_duration(const char *s, uint64_t *out)
{
	uint64_t	 n = 0, mult = 1;
	const char	*p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	switch (*p) {
	case '\0':
		break;
	case 's':
		mult = 1;
		p++;
		break;
	case 'm':
		mult = 60;
		p++;
		break;
	case 'h':
		mult = 3600;
		p++;
		break;
	case 'd':
		mult = 86400;
		p++;
		break;
	default:
		return -1;
	}
	if (*p != '\0' || (n != 0 && n > UINT64_MAX / mult))
		return -1;
	*out = n * mult;
	return 0;
}

char *
str_fmt_duration(uint64_t secs, char *buf, size_t bufsz)
{
	static const struct {
		uint64_t	len;
		char		unit;
	} units[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };
	size_t	i, off = 0;
	int	parts = 0, n;

	if (bufsz == 0)
		return buf;
	buf[0] = '\0';
	if (secs == 0) {
		snprintf(buf, bufsz, "0s");
		return buf;
	}
	/* Two most significant units are plenty for a human. */
	for (i = 0; i < nitems(units) && parts < 2; i++) {
		if (secs < units[i].len && parts == 0)
			continue;
		if (secs / units[i].len == 0) {
			parts++;
			continue;
		}
		n = snprintf(buf + off, bufsz - off, "%llu%c",
		    (unsigned long long)(secs / units[i].len), units[i].unit);
		if (n < 0 || (size_t)n >= bufsz - off)
			break;
		off += (size_t)n;
		secs %= units[i].len;
		parts++;
	}
	return buf;
}

char *
str_log_escape(const char *src, size_t srclen, char *dst, size_t dstsz)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i, o = 0;
	unsigned char		 c;

	if (dstsz < 4) {
		if (dstsz > 0)
			dst[0] = '\0';
		return dst;
	}
	for (i = 0; i < srclen; i++) {
		c = (unsigned char)src[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			if (o + 1 >= dstsz - 3)
				goto trunc;
			dst[o++] = (char)c;
		} else {
			if (o + 4 >= dstsz - 3)
				goto trunc;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 0xf];
		}
	}
	dst[o] = '\0';
	return dst;
trunc:
	memcpy(dst + o, "...", 4);
	return dst;
}

uint64_t
time_mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t
time_wall(void)
{
	return (int64_t)time(NULL);
}

void
str_errf(char *err, size_t errsz, const char *fmt, ...)
{
	va_list	ap;

	if (err == NULL || errsz == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

void
str_wipe_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

size_t
str_utf8_len(const unsigned char *p, size_t n)
{
	uint32_t	cp;
	size_t		len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	cp = p[0] & (0x7f >> len);
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

bool
str_is_utf8(const unsigned char *p, size_t n)
{
	size_t	i, clen;

	for (i = 0; i < n; i += clen)
		if ((clen = str_utf8_len(p + i, n - i)) == 0)
			return false;
	return true;
}

bool
str_is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

char *
time_fmt(int64_t t, enum time_style style, char *buf, size_t bufsz)
{
	static const char *const days[7] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
	};
	static const char *const months[12] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
	};
	bool		 utc = style == TIME_RFC5322_UTC ||
			    style == TIME_ISO_UTC;
	time_t		 tt = (time_t)t;
	struct tm	 tm, *ok;
	long		 off;
	char		 zone[24];

	ok = utc ? gmtime_r(&tt, &tm) : localtime_r(&tt, &tm);
	if (ok == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
		tt = 0;
		ok = utc ? gmtime_r(&tt, &tm) : localtime_r(&tt, &tm);
	}
	off = utc ? 0 : tm.tm_gmtoff / 60;
	snprintf(zone, sizeof(zone), "%c%02ld%02ld", off < 0 ? '-' : '+',
	    (off < 0 ? -off : off) / 60, (off < 0 ? -off : off) % 60);
	switch (style) {
	case TIME_RFC5322:
	case TIME_RFC5322_UTC:
		snprintf(buf, bufsz, "%s, %02d %s %04d %02d:%02d:%02d %s",
		    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, zone);
		break;
	case TIME_ISO:
	case TIME_ISO_UTC:
		snprintf(buf, bufsz, "%04d-%02d-%02d %02d:%02d:%02d %s",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, utc ? "UTC" : zone);
		break;
	case TIME_COMPACT:
		snprintf(buf, bufsz, "%04d%02d%02d%02d%02d%02d",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		break;
	case TIME_ASCTIME:
		/* asctime(3) without the year, as Postfix's mailq. */
		snprintf(buf, bufsz, "%s %s %2d %02d:%02d:%02d",
		    days[tm.tm_wday], months[tm.tm_mon], tm.tm_mday,
		    tm.tm_hour, tm.tm_min, tm.tm_sec);
		break;
	}
	return buf;
}

int
fsync_parent_dir(const char *path)
{
	char	*dir = xstrdup(path), *slash = strrchr(dir, '/');
	int	 fd, rc = -1, saved;

	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	fd = open(slash == NULL ? "." : dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	if (fd != -1) {
		rc = fsync(fd);
		saved = errno;
		close(fd);
		errno = saved;
	}
	free(dir);
	return rc;
}
