/*
 * reencode.c - the re-encoder's first pass over a spool file, one slice
 * per turn of the loop (see reencode.h).
 *
 * Each slice is a zero-second timer rather than an active event: libevent
 * polls for I/O before it runs expired timers, so the other connections
 * are served between two slices, whereas an event activated again from
 * its own callback would run in the same turn.  The second pass is a
 * thin wrapper over mime_enc_emit(): the relay drives it.
 */
#include "config.h"

#include "reencode.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "mime.h"
#include "util.h"

struct reencode {
	struct mime_enc		*enc;
	struct event		*ev;		/* the next slice */
	reencode_done_cb	 done;
	void			*arg;
	const char		*head;		/* borrowed during pass 1 */
	size_t			 headlen;
	int			 fd;
	off_t			 off;		/* next octet of the file */
	char			*buf;		/* REENCODE_SLICE, pass 1 */
	enum mime_rc		 rc;
	uint64_t		 insize;
	uint64_t		 busy_us, max_us;
};

static uint64_t
reencode_now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Reads and scans one slice.  Returns 1 when there is more, 0 at the
 * end of the file, -1 with errno on a read error. */
static int
reencode_slice(struct reencode *re)
{
	ssize_t	n;

	if (re->headlen > 0) {
		mime_enc_scan(re->enc, re->head, re->headlen);
		re->insize += re->headlen;
		re->headlen = 0;
		re->head = NULL;
	}
	do
		n = pread(re->fd, re->buf, REENCODE_SLICE, re->off);
	while (n == -1 && errno == EINTR);
	if (n <= 0)
		return (int)n;
	mime_enc_scan(re->enc, re->buf, (size_t)n);
	re->off += n;
	re->insize += (uint64_t)n;
	return 1;
}

static void
reencode_slice_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reencode	*re = arg;
	struct timeval	 now = { 0, 0 };
	uint64_t	 t0 = reencode_now_us(), dt;
	int		 rc, err = 0;

	(void)fd;
	(void)what;
	rc = reencode_slice(re);
	if (rc == 0)
		re->rc = mime_enc_plan(re->enc);
	else if (rc == -1)
		err = errno != 0 ? errno : EIO;
	dt = reencode_now_us() - t0;
	re->busy_us += dt;
	if (dt > re->max_us)
		re->max_us = dt;
	if (rc == 1) {
		evtimer_add(re->ev, &now);
		return;
	}
	free(re->buf);
	re->buf = NULL;
	re->done(re, err, re->arg);
}

struct reencode *
reencode_start(struct event_base *base, const char *head, size_t headlen,
    int fd, off_t off, bool seven_bit, reencode_done_cb done, void *arg)
{
	struct reencode	*re = xcalloc(1, sizeof(*re));
	struct timeval	 now = { 0, 0 };

	re->enc = mime_enc_new();
	if (seven_bit)
		mime_enc_set_7bit(re->enc);
	re->done = done;
	re->arg = arg;
	re->head = head;
	re->headlen = head != NULL ? headlen : 0;
	re->fd = fd;
	re->off = off;
	re->buf = xmalloc(REENCODE_SLICE);
	re->rc = MIME_EMISMATCH;	/* no plan yet */
	if ((re->ev = evtimer_new(base, reencode_slice_cb, re)) == NULL)
		fatalx("reencode: out of memory");
	evtimer_add(re->ev, &now);
	return re;
}

void
reencode_free(struct reencode *re)
{
	if (re == NULL)
		return;
	if (re->ev != NULL)
		event_free(re->ev);
	free(re->buf);
	mime_enc_free(re->enc);
	free(re);
}

enum mime_rc
reencode_rc(const struct reencode *re)
{
	return re->rc;
}

const char *
reencode_detail(const struct reencode *re)
{
	return mime_enc_detail(re->enc);
}

uint64_t
reencode_size(const struct reencode *re)
{
	return mime_enc_size(re->enc);
}

void
reencode_stats(const struct reencode *re, struct mime_stats *st)
{
	mime_enc_stats(re->enc, st);
}

uint64_t
reencode_insize(const struct reencode *re)
{
	return re->insize;
}

void
reencode_timing(const struct reencode *re, uint64_t *busy_us,
    uint64_t *slice_max_us)
{
	*busy_us = re->busy_us;
	*slice_max_us = re->max_us;
}

void
reencode_emit_start(struct reencode *re,
    void (*cb)(void *arg, const char *p, size_t n), void *arg)
{
	mime_enc_emit_start(re->enc, cb, arg);
}

void
reencode_emit(struct reencode *re, const char *p, size_t n)
{
	mime_enc_emit(re->enc, p, n);
}

enum mime_rc
reencode_emit_end(struct reencode *re)
{
	return mime_enc_emit_end(re->enc);
}
