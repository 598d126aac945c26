/*
 * fuzz_envelope.c - libFuzzer harness for envelope_parse() and
 * envelope_format().
 *
 * The input is an envelope file whose name is the id FUZZ_ID.  Whatever
 * parses must format again (the spool rewrites envelopes it has read),
 * and the text must parse back to the same fields: numbers, sender,
 * client, helo, recipients with state, DSN and reply.  Free text (error
 * and replies) may only lose a tail past ENVELOPE_FIELD_MAX octets, and
 * formatting the re-parsed envelope must give the same text again.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

#define FUZZ_ID		"0006123abcd01f2e"	/* as in the seed corpus */

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Reports a broken invariant; libFuzzer saves the input on abort(). */
static void
fuzz_check(bool ok, const char *what)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_envelope: %s\n", what);
	abort();
}

/* NULL and "" mean the same in an envelope. */
static const char *
fuzz_str(const char *s)
{
	return s != NULL ? s : "";
}

static bool
fuzz_same(const char *a, const char *b)
{
	return strcmp(fuzz_str(a), fuzz_str(b)) == 0;
}

/* Free text <b> read back from <a>: equal, or a long <a> cut short. */
static bool
fuzz_same_text(const char *a, const char *b)
{
	size_t	alen = strlen(fuzz_str(a)), blen = strlen(fuzz_str(b));

	if (alen <= ENVELOPE_FIELD_MAX || blen == alen)
		return fuzz_same(a, b);
	return blen >= ENVELOPE_FIELD_MAX && blen < alen &&
	    strncmp(fuzz_str(a), fuzz_str(b), blen) == 0;
}

static void
fuzz_compare(const struct envelope *a, const struct envelope *b)
{
	size_t	i;

	fuzz_check(strcmp(a->id, b->id) == 0 && a->arrival == b->arrival &&
	    a->size == b->size && a->attempts == b->attempts &&
	    a->next_attempt == b->next_attempt && a->held == b->held &&
	    a->reencode == b->reencode,
	    "numbers differ after the round trip");
	fuzz_check(fuzz_same(a->sender, b->sender) &&
	    fuzz_same(a->client, b->client) && fuzz_same(a->helo, b->helo),
	    "sender, client or helo differs after the round trip");
	fuzz_check(fuzz_same_text(a->last_error, b->last_error),
	    "error text differs after the round trip");
	fuzz_check(a->nrcpt == b->nrcpt, "recipient count differs");
	for (i = 0; i < a->nrcpt; i++) {
		fuzz_check(strcmp(a->rcpts[i].addr, b->rcpts[i].addr) == 0 &&
		    a->rcpts[i].state == b->rcpts[i].state &&
		    fuzz_same(a->rcpts[i].dsn, b->rcpts[i].dsn),
		    "recipient differs after the round trip");
		fuzz_check(fuzz_same_text(a->rcpts[i].reply,
		    b->rcpts[i].reply), "reply differs after the round trip");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope		 env, back;
	struct envelope_error	 err;
	char			*text, *text2;
	size_t			 len, len2;

	if (envelope_parse(&env, (const char *)data, size, FUZZ_ID, &err) ==
	    -1) {
		fuzz_check(err.reason != NULL && err.line >= 1,
		    "failure without a reason");
		return 0;
	}
	fuzz_check(strcmp(env.id, FUZZ_ID) == 0 && env.nrcpt > 0 &&
	    env.sender != NULL && env.client != NULL && env.helo != NULL,
	    "parsed envelope incomplete");
	fuzz_check(envelope_format(&env, &text, &len) == 0,
	    "a parsed envelope does not format");
	fuzz_check(strlen(text) == len, "formatted length");
	fuzz_check(envelope_parse(&back, text, len, FUZZ_ID, &err) == 0,
	    "formatted envelope does not parse");
	fuzz_compare(&env, &back);
	/* Formatting is a fixed point after one round. */
	fuzz_check(envelope_format(&back, &text2, &len2) == 0 && len2 == len &&
	    memcmp(text, text2, len) == 0, "format is not stable");
	free(text2);
	free(text);
	envelope_cleanup(&back);
	envelope_cleanup(&env);
	return 0;
}
