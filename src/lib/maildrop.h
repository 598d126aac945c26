/*
 * maildrop.h - the maildrop: where smartrelay-sendmail(8) leaves messages
 * for the daemon, whether or not the daemon is running.
 *
 * SPOOL/maildrop (mode 01733, owned by the daemon's user) takes one file
 * per message, written by the injector as ".tmp.<random>" and renamed to
 * "<32 hex digits>" once complete and synced.  A file is a small text
 * header (format at the top of maildrop.c) followed by the message as
 * the user gave it.  The pure part (format, parse, line canonicalisation)
 * is shared by the injector and the daemon; the daemon part picks files
 * up at start and, through inotify, as they arrive, and turns each into
 * a spool message.
 */
#ifndef MAILDROP_H
#define MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp.h"

#define MAILDROP_DIR		"maildrop"	/* under the spool */
#define MAILDROP_DIR_MODE	01733		/* sticky, others -wx */
#define MAILDROP_SPOOL_MODE	0711		/* others may only traverse */
#define MAILDROP_FILE_MODE	0644		/* see maildrop.c */
#define MAILDROP_NAME_LEN	32		/* hex digits of a file name */
#define MAILDROP_TMP_PREFIX	".tmp."

/* Room the daemon's Received: header takes at most; the injector counts
 * it against the size limit so both sides agree on what fits. */
#define MAILDROP_RECEIVED_MAX	512

struct conf;
struct event_base;
struct spool;
struct maildrop;

/* The envelope part of a maildrop file.  As filled by maildrop_parse(),
 * the strings are owned by the struct (maildrop_env_cleanup()). */
struct maildrop_env {
	unsigned long	  uid;		/* claimed by the writer only */
	char		 *sender;	/* "" is the null sender */
	char		**rcpts;
	size_t		  nrcpt;
	enum smtp_body	  body;		/* -B or BODY= (RFC 6152) */
	uint64_t	  size;		/* message octets after the header */
};

/* Formats the header of <env> into a new buffer (caller frees) of *len
 * octets.  The size field always has the same width, so a header
 * formatted again with another size has the same length and may be
 * written over the first one.  Returns NULL with errno EINVAL when
 * there is no recipient, or an address is empty (the sender may be),
 * longer than SMTP_ADDR_BUFSZ - 1 or holds a control byte. */
char		*maildrop_format(const struct maildrop_env *env, size_t *len);

/* Parses the header at the start of <buf>/<len> (no NUL needed) of a
 * file of <total> octets.  On success fills <env> (which need not be
 * initialised), stores the header length in *hdrlen and returns 0;
 * then *hdrlen + env->size == total.  Returns -1 with <env> zeroed and a
 * static reason in *reason ("bad-magic", "size-mismatch", ...) for
 * anything else, including more than <max_rcpts> recipients.  Never
 * reads past <buf> + <len>. */
int		 maildrop_parse(const char *buf, size_t len, uint64_t total,
		    size_t max_rcpts, struct maildrop_env *env, size_t *hdrlen,
		    const char **reason);

/* Frees what maildrop_parse() stored and zeroes <env>.  Safe on a zeroed
 * env. */
void		 maildrop_env_cleanup(struct maildrop_env *env);

/* Largest header maildrop_parse() can accept with <max_rcpts>. */
size_t		 maildrop_header_max(size_t max_rcpts);

/*
 * Canonicalisation of the message lines.  A maildrop message is not
 * SMTP-framed: a line "." is content, and there is no dot-stuffing.  Each
 * line goes through the same decoder as SMTP DATA (smtp_data_line), so
 * the same rules hold: too many Received: headers and oversized messages
 * are refused; lines over 998 octets, bare CRs and NULs are content (the
 * relay re-encodes them, issue 13).
 */
struct maildrop_canon {
	struct smtp_data	data;
};

/* Starts a message; <initial_size> counts octets already written. */
void		 maildrop_canon_init(struct maildrop_canon *c,
		    uint64_t max_size, uint64_t initial_size);

/* Feeds one line as stored in the file: <line>/<len> without its LF; a
 * CR just before the LF is the line ending, any other CR is bare.  The
 * last line of a file may lack its LF.  Returns SMTP_DATA_OK with the
 * canonical content (to be written followed by CRLF) in *out and *outlen,
 * valid until the next call, or the first violation seen so far. */
enum smtp_data_err maildrop_canon_line(struct maildrop_canon *c,
		    const char *line, size_t len, const char **out,
		    size_t *outlen);

/* Feeds a piece of a line too long for the reader's buffer: more of the
 * line follows, through maildrop_canon_piece() again or, for its end,
 * maildrop_canon_line().  The piece holds no LF, and does not end in a
 * CR unless the reader knows the octet after it is not a LF.  Returns
 * as maildrop_canon_line(); the content is written without CRLF. */
enum smtp_data_err maildrop_canon_piece(struct maildrop_canon *c,
		    const char *piece, size_t len, const char **out,
		    size_t *outlen);

#endif /* MAILDROP_H */
