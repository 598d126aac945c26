/*
 * account.h - the sending accounts of the upstream sections.
 *
 * Gmail counts per account, whatever the port: every upstream section
 * that logs in as the same username shares one set of counters
 * (quota.h, kept in SPOOL/quota.<username>), plus the transactions in
 * flight that the counters do not hold yet.  This module decides
 * whether a message may go now; pausing or pacing an upstream, and the
 * timers for it, are upstream.c's.
 */
#ifndef ACCOUNT_H
#define ACCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "quota.h"

struct conf_upstream;
struct account;			/* one username's counters */
struct account_list;		/* all of them */

/* An empty list; the counters files live in <spool_dir> (copied). */
struct account_list *account_list_new(const char *spool_dir);

/* Saves every account's counters durably and frees them.  NULL is a
 * no-op. */
void		 account_list_free(struct account_list *);

/* A reload begins: the next account_list_get() for each account takes
 * its limits again. */
void		 account_list_reload(struct account_list *);

/* The account section <cu> logs in as, made (and loaded from its file)
 * on first use, or NULL when its quota is "none" (or too many accounts
 * exist).  The first section of an account that sets limits after a
 * reload decides them.  Borrowed until account_list_free(). */
struct account	*account_list_get(struct account_list *,
		    const struct conf_upstream *cu);

/* What account_check() says about a message. */
enum account_verdict {
	ACCOUNT_SEND,		/* it may go now */
	ACCOUNT_WAIT,		/* transactions in flight may use up the
				 * room: ask again when one ends */
	ACCOUNT_PACE,		/* near the limit: not before *at */
	ACCOUNT_LIMIT,		/* at the limit until *at (reason in why) */
};

/* May a message with <nrcpt> pending recipients go at <now>?  <at> is
 * set for ACCOUNT_PACE and ACCOUNT_LIMIT; <why> (<whysz> bytes) gets a
 * one-line reason for ACCOUNT_LIMIT. */
enum account_verdict account_check(const struct account *,
		    unsigned int nrcpt, int64_t now, int64_t *at, char *why,
		    size_t whysz);

/* A transaction with <nrcpt> recipients starts, and counts as in flight
 * until account_done(), which records the <nsent> recipients it sent
 * at <now>. */
void		 account_hold(struct account *, unsigned int nrcpt);
void		 account_done(struct account *, unsigned int nrcpt,
		    unsigned int nsent, int64_t now);

/* The counters at <now>, for stats and the log. */
void		 account_status(const struct account *, int64_t now,
		    struct quota_status *);

#endif /* ACCOUNT_H */
