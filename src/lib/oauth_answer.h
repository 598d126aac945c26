/*
 * oauth_answer.h - the pure parts of OAuth 2.0 for XOAUTH2: the token
 * endpoint's JSON answer (RFC 6749 §5), and the atomic write of a
 * refresh token file.  No event loop, no network.
 *
 * Answers hold secrets: they are wiped by oauth_answer_clear() and
 * never logged.
 */
#ifndef OAUTH_ANSWER_H
#define OAUTH_ANSWER_H

#include <stddef.h>
#include <stdint.h>

/* How a token request ended. */
enum oauth_status {
	OAUTH_OK,
	OAUTH_TEMPORARY,	/* network, TLS, timeout, 5xx, 429, bad
				 * answer: try again later */
	OAUTH_REJECTED,		/* unusable credential files, invalid_scope
				 * and the like: a human must act.  This
				 * and the values below all mean that. */
	OAUTH_REJECTED_GRANT,	/* invalid_grant: consent again
				 * (smartrelayctl oauth-setup) */
	OAUTH_REJECTED_CLIENT,	/* invalid_client, unauthorized_client:
				 * the OAuth client settings */
};

/* The parsed answer of a token endpoint. */
struct oauth_answer {
	int		 http_code;	/* 0: no HTTP answer (see reason) */
	enum oauth_status status;
	char		*access_token;	/* secret; NULL unless OAUTH_OK */
	char		*refresh_token;	/* secret; NULL when absent */
	int64_t		 expires_in;	/* seconds; -1 when absent */
	char		 reason[512];	/* when not OAUTH_OK */
};

/* Wipes and frees the answer's strings (not the struct itself). */
void		 oauth_answer_clear(struct oauth_answer *);

/* Fills <a> from the HTTP status <code> and the JSON <body> of <len>
 * octets (RFC 6749 §5.1, §5.2): OAUTH_OK needs a 200, an access_token
 * of printable ASCII and a token_type of Bearer when present; 400/401
 * with error invalid_grant, invalid_client, unauthorized_client or
 * invalid_scope is OAUTH_REJECTED; anything else is OAUTH_TEMPORARY.
 * The body must be one JSON object (RFC 8259, strict: no trailing
 * data, no duplicate keys among the fields read, nesting below 16).
 * Returns a->status. */
enum oauth_status oauth_parse_answer(int code, const char *body, size_t len,
		    struct oauth_answer *a);

/* Writes <token> and a newline to <path> atomically: a temporary file
 * in the same directory (mode 0600, owner and group of the file it
 * replaces when we may), fsync, rename, fsync of the directory.
 * Returns 0, or -1 with a reason (never the token) in <err>. */
int		 oauth_write_token(const char *path, const char *token,
		    char *err, size_t errsz);

#endif /* OAUTH_ANSWER_H */
