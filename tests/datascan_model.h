/*
 * datascan_model.h - the DATA path before datascan.c, kept as the model
 * the scanner is compared with (check_datascan, fuzz_datascan):
 * line_get_piece() on an evbuffer, smtp_data_line()/smtp_data_piece()
 * and stamp_scan_line(), put together as msgin_line() and msgin_end()
 * did; and the scanner run the same way.  The missing fields are
 * written as fixed text, without the clock.
 */
#ifndef DATASCAN_MODEL_H
#define DATASCAN_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mime_scan.h"
#include "smtp.h"

struct dsm_result {
	char			*out;		/* what the spool got */
	size_t			 len, cap;
	bool			 end;		/* the end of data came */
	size_t			 used;		/* octets up to it */
	enum smtp_data_err	 err;
	uint64_t		 size;
	bool			 clean;		/* mime_scan of <out> */
	enum mime_8bit		 eightbit;
};

/* The input <in>/<n> as it arrives in reads ending at the <ncuts>
 * sorted offsets <cuts>, then the rest; the limits as msgin_new()'s. */
struct dsm_input {
	const char	*in;
	size_t		 n;
	const size_t	*cuts;
	size_t		 ncuts;
	uint64_t	 max_size;
	bool		 reject_bare_lf;
	uint64_t	 initial;
};

/* Runs the model, or the scanner, into <r> (freed with dsm_free()). */
void		 dsm_model(struct dsm_result *r, const struct dsm_input *);
void		 dsm_scan(struct dsm_result *r, const struct dsm_input *);
void		 dsm_free(struct dsm_result *r);

/* What differs between the two, or NULL: the end, its place and the
 * error always; the size and the octets when the message came whole
 * and was accepted. */
const char	*dsm_diff(const struct dsm_result *model,
		    const struct dsm_result *scan);

#endif /* DATASCAN_MODEL_H */
