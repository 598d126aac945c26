/*
 * stamp.c - is Date: or Message-ID: missing, and making them (stamp.h).
 *
 * The scan keeps four flags: it never buffers a line, so a header
 * section of any length costs nothing but the lines themselves.  Field
 * names are compared without regard to ASCII case (RFC 5322 1.2.2).
 */
#include "config.h"

#include "stamp.h"

#include <sys/random.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util.h"

void
stamp_scan_init(struct stamp_scan *s)
{
	memset(s, 0, sizeof(*s));
	s->in_headers = true;
}

size_t
stamp_field_name(const char *line, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if (line[i] == ':')
			return i;
		if ((unsigned char)line[i] < 33 || (unsigned char)line[i] > 126)
			return 0;
	}
	return 0;
}

static bool
stamp_name_is(const char *line, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(line, name, n) == 0;
}

bool
stamp_scan_line(struct stamp_scan *s, const char *line, size_t len, bool eol)
{
	bool	mid = s->mid_line;
	size_t	n;

	s->mid_line = !eol;
	if (!s->in_headers || mid)
		return false;
	if (len > 0 && (line[0] == ' ' || line[0] == '\t') && s->in_field)
		return false;
	if (len == 0 || (n = stamp_field_name(line, len)) == 0) {
		s->in_headers = false;
		return true;
	}
	stamp_scan_field(s, line, n);
	return false;
}

void
stamp_scan_field(struct stamp_scan *s, const char *name, size_t n)
{
	s->in_field = true;
	s->has_date |= stamp_name_is(name, n, "Date");
	s->has_msgid |= stamp_name_is(name, n, "Message-ID");
}

/* 64 bits that differ between calls and processes: the kernel's, or
 * (early at boot, when getrandom() would block) the clock, the pid and
 * a counter, mixed by splitmix64. */
static uint64_t
stamp_random(void)
{
	static uint64_t	counter;
	uint64_t	r, z;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
		return r;
	z = time_mono_ms() ^ ((uint64_t)getpid() << 40) ^
	    (++counter * 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int
stamp_msgid(int64_t now, const char *domain, char *buf, size_t bufsz)
{
	char	stamp[32];
	int	n;

	time_fmt(now, TIME_COMPACT, stamp, sizeof(stamp));
	n = snprintf(buf, bufsz, "<%s.%016llx@%s>", stamp,
	    (unsigned long long)stamp_random(), domain);
	return n < 0 || (size_t)n >= bufsz ? -1 : 0;
}

int
stamp_missing(const struct stamp_scan *s, int64_t now, const char *domain,
    const char *eol, char *buf, size_t bufsz, char *msgid, size_t msgidsz)
{
	char	date[64], id[320];
	size_t	len = 0;
	int	n;

	if (msgid != NULL && msgidsz > 0)
		msgid[0] = '\0';
	if (bufsz > 0)
		buf[0] = '\0';
	if (!s->has_date) {
		n = snprintf(buf, bufsz, "Date: %s%s", time_fmt(now,
		    TIME_RFC5322, date, sizeof(date)), eol);
		if (n < 0 || (size_t)n >= bufsz)
			return -1;
		len = (size_t)n;
	}
	if (!s->has_msgid) {
		if (stamp_msgid(now, domain, id, sizeof(id)) == -1)
			return -1;
		n = snprintf(buf + len, bufsz - len, "Message-ID: %s%s", id,
		    eol);
		if (n < 0 || (size_t)n >= bufsz - len)
			return -1;
		len += (size_t)n;
		if (msgid != NULL && strcopy(msgid, id, msgidsz) == -1)
			return -1;
	}
	return (int)len;
}
