/*
 * fuzz_conf.c - libFuzzer harness for the configuration reader:
 * conf_load() on arbitrary octets, held in a memfd and read through its
 * /proc/self/fd/N path.
 *
 * Checked, besides memory safety and leaks: the error buffer is always
 * NUL-terminated; a failure writes at least one line, and every line
 * starts with the file name and a colon; a success writes nothing and
 * keeps conf.h's promises (a host name, at least one listen address, one
 * allow network and one upstream, at most CONF_UPSTREAM_MAX, no empty
 * verify_name, listen entries conf_split_hostport() reads).  A second
 * load of the same text into a smaller buffer gives the same outcome and
 * a prefix of the same messages: nothing carries over from one load to
 * the next.  conf_ref(), conf_free() and conf_network_find() run on each
 * configuration read.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#define FUZZ_ERR_MAX	8192

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_check(bool ok, const char *what)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_conf: %s\n", what);
	abort();
}

/* Every line of <err> starts with "<path>:". */
static bool
fuzz_lines_name(const char *err, const char *path)
{
	size_t		 plen = strlen(path);
	const char	*line = err, *nl;

	for (;;) {
		if (strncmp(line, path, plen) != 0 || line[plen] != ':')
			return false;
		if ((nl = strchr(line, '\n')) == NULL)
			return true;
		line = nl + 1;
	}
}

/* conf_network_find() on a few clients of the configuration <c>. */
static void
fuzz_find(const struct conf *c)
{
	static const char *const	 addrs[] = { "127.0.0.1", "10.1.2.3",
	    "192.168.1.20", "::1", "fd00::1", "2001:db8::5" };
	const struct conf_network	*n;
	struct sockaddr_in		 sin;
	struct sockaddr_in6		 sin6;
	size_t				 i;

	for (i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		memset(&sin, 0, sizeof(sin));
		memset(&sin6, 0, sizeof(sin6));
		sin.sin_family = AF_INET;
		sin6.sin6_family = AF_INET6;
		if (inet_pton(AF_INET, addrs[i], &sin.sin_addr) == 1)
			n = conf_network_find(c, (struct sockaddr *)&sin);
		else if (inet_pton(AF_INET6, addrs[i], &sin6.sin6_addr) == 1)
			n = conf_network_find(c, (struct sockaddr *)&sin6);
		else
			continue;
		fuzz_check(n == NULL || (n >= c->networks &&
		    n < c->networks + c->nnetworks), "network_find");
	}
}

/* What conf.h promises of a configuration that loaded. */
static void
fuzz_conf_check(const struct conf *c, const char *path)
{
	char		host[256];
	uint16_t	port;
	size_t		i;

	fuzz_check(strcmp(c->path, path) == 0, "path");
	fuzz_check(c->hostname != NULL && c->hostname[0] != '\0',
	    "empty hostname");
	fuzz_check(c->nlisten > 0 && c->nallow > 0, "no listen or allow");
	for (i = 0; i < c->nlisten; i++)
		fuzz_check(conf_split_hostport(c->listen[i], host,
		    sizeof(host), &port) == 0, "listen entry");
	fuzz_check(c->nupstream >= 1 && c->nupstream <= CONF_UPSTREAM_MAX,
	    "upstream count");
	for (i = 0; i < c->nupstream; i++)
		fuzz_check(c->upstream[i].verify_name[0] != '\0' &&
		    c->upstream[i].name[0] != '\0' &&
		    c->upstream[i].host[0] != '\0', "empty upstream name");
	fuzz_check(c->server_tls.min_version >= 10 &&
	    c->server_tls.min_version <= 13, "TLS version");
	fuzz_check(c->max_clients_per_ip <= c->max_clients, "max_clients");
	fuzz_check(c->queue.retry_min <= c->queue.retry_max &&
	    c->queue.retry_max <= c->queue.lifetime, "queue durations");
	fuzz_find(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int	 fd = -1;
	static char	 path[64];
	static char	 err[FUZZ_ERR_MAX], err2[FUZZ_ERR_MAX];
	struct conf	*c, *c2;
	size_t		 small, off;
	ssize_t		 n;

	if (fd == -1) {
		fd = memfd_create("smartrelay.conf", MFD_CLOEXEC);
		fuzz_check(fd != -1, "memfd_create");
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	fuzz_check(ftruncate(fd, 0) == 0, "ftruncate");
	for (off = 0; off < size; off += (size_t)n) {
		n = pwrite(fd, data + off, size - off, (off_t)off);
		fuzz_check(n > 0, "pwrite");
	}

	memset(err, 0xff, sizeof(err));
	c = conf_load(path, err, sizeof(err));
	fuzz_check(memchr(err, '\0', sizeof(err)) != NULL,
	    "error buffer not NUL-terminated");
	if (c == NULL)
		fuzz_check(err[0] != '\0' && fuzz_lines_name(err, path),
		    "an error line without the file name");
	else {
		fuzz_check(err[0] == '\0', "errors after a success");
		fuzz_conf_check(c, path);
		/* A holder's reference outlives the first conf_free(). */
		fuzz_check(conf_ref(c) == c, "conf_ref");
		conf_free(c);
		fuzz_check(strcmp(c->path, path) == 0, "freed too early");
	}

	/* Again, into a buffer of 1 to 128 octets. */
	small = 1 + (size > 0 ? data[size - 1] % 128 : 0);
	memset(err2, 0xff, sizeof(err2));
	c2 = conf_load(path, err2, small);
	fuzz_check(memchr(err2, '\0', small) != NULL,
	    "small error buffer not NUL-terminated");
	fuzz_check((c == NULL) == (c2 == NULL), "the outcome changed");
	fuzz_check(strncmp(err, err2, strlen(err2)) == 0,
	    "the messages changed");
	fuzz_check((unsigned char)err2[small] == 0xff,
	    "written past the error buffer");
	conf_free(c2);
	conf_free(c);
	return 0;
}
