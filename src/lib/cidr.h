/*
 * cidr.h - client network allow-lists: parse "10.0.0.0/8" or
 * "fd00::/8", match a socket address against them.
 *
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4 networks, so a
 * dual-stack listener cannot be used to slip past an IPv4 allow-list.
 */
#ifndef CIDR_H
#define CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* network order, host bits zero */
	unsigned int	prefix;		/* 0..32 or 0..128 */
};

/* Parses "addr/prefix" or a bare address (a host route).  Host bits set
 * beyond the prefix are an error ("10.0.0.1/8"), as a typo guard.
 * Returns 0 or -1. */
int	cidr_parse(const char *s, struct cidr *out);

/* True when <sa> falls inside any of the <n> networks. */
bool	cidr_match_any(const struct cidr *list, size_t n,
	    const struct sockaddr *sa);

/* True when network <inner> lies inside network <outer> (or is it). */
bool	cidr_contains(const struct cidr *outer, const struct cidr *inner);

/* Writes the numeric address of <sa> (no port; IPv4-mapped shown as
 * IPv4) into <buf>.  Returns <buf>, or "?" on an unknown family. */
const char *cidr_addr_str(const struct sockaddr *sa, char *buf, size_t bufsz);

/* True when <a> and <b> are the same address of the same family, ports
 * aside.  Unlike the matching above, an IPv4-mapped IPv6 address is not
 * the IPv4 address it maps. */
bool	cidr_same_addr(const struct sockaddr *a, const struct sockaddr *b);

#endif /* CIDR_H */
