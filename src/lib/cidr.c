/*
 * cidr.c - client network allow-lists.
 *
 * Networks are kept in network byte order with their host bits zero.
 * An IPv4-mapped IPv6 network or client address (::ffff:a.b.c.d) is
 * turned into plain IPv4 before anything is compared, so the same client
 * is judged the same way on an IPv4 and on a dual-stack socket.  No
 * name resolution: only numeric addresses are accepted.
 */
#include "config.h"

#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* Bytes 0-11 of an IPv4-mapped IPv6 address (RFC 4291 2.5.5.2). */
static const uint8_t cidr_mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

static bool
cidr_is_mapped(const uint8_t *a16)
{
	return memcmp(a16, cidr_mapped_prefix, 12) == 0;
}

/* True when the first <prefix> bits of <a> and <b> are equal. */
static bool
cidr_prefix_eq(const uint8_t *a, const uint8_t *b, unsigned int prefix)
{
	unsigned int	full = prefix / 8, rest = prefix % 8;
	uint8_t		mask;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* True when any bit after the first <prefix> of <a> (<bytes> long) is
 * set. */
static bool
cidr_has_host_bits(const uint8_t *a, size_t bytes, unsigned int prefix)
{
	size_t		i;
	unsigned int	bit;

	for (i = 0; i < bytes; i++)
		for (bit = 0; bit < 8; bit++)
			if (i * 8 + bit >= prefix &&
			    (a[i] & (0x80 >> bit)) != 0)
				return true;
	return false;
}

/* Prefix length: 1 to 3 decimal digits ("/08" is read as 8), at most
 * <max>.  Returns -1 on anything else, including the empty string. */
static int
cidr_parse_prefix(const char *s, unsigned int max, unsigned int *out)
{
	unsigned int	n = 0;
	size_t		i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i == 3 || s[i] < '0' || s[i] > '9')
			return -1;
		n = n * 10 + (unsigned int)(s[i] - '0');
	}
	if (i == 0 || n > max)
		return -1;
	*out = n;
	return 0;
}

int
cidr_parse(const char *s, struct cidr *out)
{
	char		 buf[INET6_ADDRSTRLEN];
	const char	*slash;
	struct cidr	 c;
	size_t		 len;

	memset(&c, 0, sizeof(c));
	slash = strchr(s, '/');
	len = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';

	/* inet_pton() takes only full numeric forms: no "10/8", no
	 * "10.1", no octal-looking "010.0.0.1", no scope ids. */
	c.family = memchr(buf, ':', len) != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(c.family, buf, c.addr) != 1)
		return -1;
	c.prefix = c.family == AF_INET ? 32 : 128;
	if (slash != NULL &&
	    cidr_parse_prefix(slash + 1, c.prefix, &c.prefix) == -1)
		return -1;
	if (cidr_has_host_bits(c.addr, c.family == AF_INET ? 4 : 16,
	    c.prefix))
		return -1;

	/* A mapped network with host bits zero has prefix >= 96, since the
	 * 0xffff marker bits must be inside the prefix. */
	if (c.family == AF_INET6 && cidr_is_mapped(c.addr)) {
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
		c.family = AF_INET;
		c.prefix -= 96;
	}
	*out = c;
	return 0;
}

/* Extracts the family and address of <sa>, mapped IPv6 as IPv4.
 * Returns 0, or -1 on another family. */
static int
cidr_sockaddr(const struct sockaddr *sa, int *family, uint8_t *a16)
{
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;

	memset(a16, 0, 16);
	if (sa == NULL)
		return -1;
	/* Copies avoid alignment assumptions about the caller's storage. */
	if (sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		memcpy(a16, &sin.sin_addr, 4);
		*family = AF_INET;
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(&sin6, sa, sizeof(sin6));
		memcpy(a16, &sin6.sin6_addr, 16);
		*family = AF_INET6;
		if (cidr_is_mapped(a16)) {
			memmove(a16, a16 + 12, 4);
			memset(a16 + 4, 0, 12);
			*family = AF_INET;
		}
		return 0;
	}
	return -1;
}

bool
cidr_match_any(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
	uint8_t		a[16];
	int		family;
	size_t		i;

	if (cidr_sockaddr(sa, &family, a) == -1)
		return false;
	for (i = 0; i < n; i++) {
		if (list[i].family != family ||
		    list[i].prefix > (family == AF_INET ? 32u : 128u))
			continue;
		if (cidr_prefix_eq(list[i].addr, a, list[i].prefix))
			return true;
	}
	return false;
}

bool
cidr_contains(const struct cidr *outer, const struct cidr *inner)
{
	return outer->family == inner->family &&
	    outer->prefix <= inner->prefix &&
	    cidr_prefix_eq(outer->addr, inner->addr, outer->prefix);
}

const char *
cidr_addr_str(const struct sockaddr *sa, char *buf, size_t bufsz)
{
	uint8_t		a[16];
	int		family;

	if (cidr_sockaddr(sa, &family, a) == -1 ||
	    bufsz > (size_t)INT32_MAX ||
	    inet_ntop(family, a, buf, (socklen_t)bufsz) == NULL)
		return "?";
	return buf;
}

bool
cidr_same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	const struct sockaddr_in	*a4, *b4;
	const struct sockaddr_in6	*a6, *b6;

	if (a->sa_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET) {
		a4 = (const struct sockaddr_in *)(const void *)a;
		b4 = (const struct sockaddr_in *)(const void *)b;
		return a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	}
	if (b->sa_family == AF_INET6) {
		a6 = (const struct sockaddr_in6 *)(const void *)a;
		b6 = (const struct sockaddr_in6 *)(const void *)b;
		return memcmp(&a6->sin6_addr, &b6->sin6_addr,
		    sizeof(a6->sin6_addr)) == 0;
	}
	return false;
}
