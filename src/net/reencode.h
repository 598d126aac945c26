/*
 * reencode.h - the re-encoder (mime.h) over a spool file, for the relay
 * (issue 13): a message with lines over 998 octets, bare CRs or NULs
 * goes upstream re-encoded, so that decoding gives back its octets.
 *
 * The first pass reads the whole message: it runs one slice of at most
 * REENCODE_SLICE octets per turn of the event loop, so that a 25 MB
 * message never holds up the other connections for more than about a
 * millisecond.  The second pass is the relay's own, chunk by chunk, as
 * it streams the body.  Memory: the slice buffer during the first pass,
 * then mime.c's bound (under 256 KB, about 1 MB for a moment).
 */
#ifndef REENCODE_H
#define REENCODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mime.h"

#define REENCODE_SLICE	(256 * 1024)	/* octets read per loop turn */

struct event_base;
struct reencode;

/* The first pass is over: <err> is 0 (then see reencode_rc()) or the
 * errno of a failed read of the file. */
typedef void	(*reencode_done_cb)(struct reencode *, int err, void *arg);

/*
 * Starts the first pass over the octets that will be sent: <head>/
 * <headlen> (a rewritten header block, or NULL/0; borrowed until done()
 * is called), then the file <fd> from offset <off> to its end, read with
 * pread(2), so the file offset is left alone.  <done> runs later, from
 * the loop, never from inside reencode_start().  With <seven_bit>, the
 * output is 7-bit as well (mime_enc_set_7bit()).  The caller owns the
 * result and frees it with reencode_free(); never NULL.
 */
struct reencode	*reencode_start(struct event_base *base, const char *head,
		    size_t headlen, int fd, off_t off, bool seven_bit,
		    reencode_done_cb done, void *arg);

/* Cancels a first pass still running (done() is then never called) and
 * frees everything.  NULL is a no-op. */
void		 reencode_free(struct reencode *);

/* After done() with err 0: what mime_enc_plan() said (MIME_OK,
 * MIME_UNCHANGED or an error), where it failed ("" unless an error),
 * the size the second pass writes, what it changes, the octets the
 * first pass read, and the loop time it took (microseconds): in all
 * (the sum of its slices) and in its longest slice. */
enum mime_rc	 reencode_rc(const struct reencode *);
const char	*reencode_detail(const struct reencode *);
uint64_t	 reencode_size(const struct reencode *);
void		 reencode_stats(const struct reencode *, struct mime_stats *);
uint64_t	 reencode_insize(const struct reencode *);
void		 reencode_timing(const struct reencode *, uint64_t *busy_us,
		    uint64_t *slice_max_us);

/* The second pass, after MIME_OK (see mime_enc_emit_start()): feed the
 * same octets again, in chunks of any size; each call writes through
 * <cb> before it returns.  reencode_emit_end() returns MIME_OK, or
 * MIME_EMISMATCH when the octets were not those of the first pass: the
 * output must then not be completed (no final dot).  May be started
 * again for another transaction of the same message. */
void		 reencode_emit_start(struct reencode *,
		    void (*cb)(void *arg, const char *p, size_t n), void *arg);
void		 reencode_emit(struct reencode *, const char *p, size_t n);
enum mime_rc	 reencode_emit_end(struct reencode *);

#endif /* REENCODE_H */
