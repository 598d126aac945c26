/*
 * sasl.h - the base64 codec of the AUTH step functions (lib/saslstep.h),
 * OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock kept here because lib/
 * links no crypto library, and the reading of secret files.
 *
 * Results hold credentials: callers wipe them with str_wipe_free() as soon
 * as they are sent, and never log them.
 */
#ifndef SASL_H
#define SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "saslstep.h"

/* The codec to give sasl_server_init() and sasl_client_init(). */
extern const struct sasl_b64 sasl_b64_openssl;

/* base64 of the <len> octets at <p>, NUL-terminated, or NULL beyond
 * 1 MiB.  Caller frees with str_wipe_free(). */
char		*sasl_encode(const void *p, size_t len);

/* Decodes a base64 server challenge (AUTH LOGIN's "334 VXNlcm5hbWU6")
 * into <out>.  Returns the length, or -1 on bad input or no room. */
int		 sasl_unbase64(const char *in, char *out, size_t outsz);

/* The checks every file holding a secret must pass, on its fstat():
 * a regular file, not readable or writable by others, not writable by
 * its group.  Returns 0, or -1 with the reason (and the chmod that fixes
 * it) in <err>. */
struct stat;
int		 sasl_secret_stat_check(const char *path, const struct stat *st,
		    char *err, size_t errsz);

/* Reads the password: the first line of <path>, without its line end.
 * Refuses (returns NULL, reason in <err>) a file that others may read
 * or write, that its group may write (0640 root:smartrelay is fine), that
 * is not a regular file, is empty, or is over 1 KiB.  Caller frees with
 * str_wipe_free(). */
char		*sasl_read_password(const char *path, char *err, size_t errsz);

#endif /* SASL_H */
