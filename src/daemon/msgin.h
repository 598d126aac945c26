/*
 * msgin.h - one message being received by a session: the trace header
 * that starts it, the DATA octets decoded (datascan.h) and written to
 * the spool, the Date: and Message-ID: fields the header section lacked,
 * and the hand-over to the spool's commit.
 *
 * It neither reads the socket nor answers the client: the session feeds
 * it what it reads and turns what it says into replies.
 */
#ifndef MSGIN_H
#define MSGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp.h"
#include "spool.h"

struct msgin;

/* Who sends the message, for the trace header and the log (all
 * borrowed for the call). */
struct msgin_from {
	unsigned int	 sid;		/* the session, for the log */
	const char	*addr;		/* numeric client address */
	const char	*helo;
	const char	*protocol;	/* "ESMTPSA", ... (RFC 3848) */
	const char	*tls_version;	/* NULL without TLS */
	const char	*tls_cipher;
	const char	*hostname;	/* ours */
	const char	*domain;	/* for a Message-ID: we add */
	enum smtp_body	 body;		/* MAIL's BODY= (RFC 6152) */
	bool		 smtputf8;	/* MAIL's SMTPUTF8 (RFC 6531) */
};

/* How the end of data went. */
enum msgin_end {
	MSGIN_OK,		/* commit it: msgin_commit() */
	MSGIN_REJECTED,		/* the data broke a rule: *reply says which */
	MSGIN_IOERR,		/* a spool write failed (452) */
};

/* Starts a message from <sender> to the <nrcpt> <rcpts> in <spool> and
 * writes its trace header; DATA lines are decoded with the size limit
 * <max_size> and bare LFs refused when <reject_bare_lf>.  NULL when the
 * spool cannot start a message (452).  Caller frees with msgin_free() or
 * hands it to msgin_commit(). */
struct msgin	*msgin_new(struct spool *spool, const char *sender,
		    char *const *rcpts, size_t nrcpt,
		    const struct msgin_from *from, uint64_t max_size,
		    bool reject_bare_lf);

/* The next <n> octets the client sent, cut anywhere (datascan.h).
 * Returns how many it consumed: all of them, or fewer when the end of
 * data (the lone dot) ends inside them, which sets <*end>. */
size_t		 msgin_feed(struct msgin *, const char *p, size_t n,
		    bool *end);

/* At the end of data: finishes the header fields and says whether the
 * message may be committed. */
enum msgin_end	 msgin_end(struct msgin *, const char **reply);

/* Octets of the message as stored. */
uint64_t	 msgin_size(const struct msgin *);

/* Hands the message to the spool, which calls <cb> once synced;
 * consumes the msgin. */
void		 msgin_commit(struct msgin *, spool_done_cb cb, void *arg);

/* Abandons the message.  NULL is a no-op. */
void		 msgin_free(struct msgin *);

#endif /* MSGIN_H */
