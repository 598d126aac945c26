/*
 * fuzz_datascan.c - libFuzzer harness for datascan.c against the
 * line-based path it replaced (tests/datascan_model.h): both must find
 * the same end of data and error, and for an accepted message the same
 * size, octets and quick-check flags, however the input is cut.
 *
 * Input: byte 0 picks the options (bit 0: reject bare LF; the rest: the
 * size limit), byte 1 seeds the cut points, and the rest is what the
 * client sends.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../datascan_model.h"

#define FUZZ_CUTS	32

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dsm_result	 model, scan;
	struct dsm_input	 in;
	size_t			 cuts[FUZZ_CUTS], i;
	uint32_t		 rng;
	const char		*diff;

	if (size < 2)
		return 0;
	in.in = (const char *)data + 2;
	in.n = size - 2;
	in.reject_bare_lf = data[0] & 1;
	/* Small limits put the size check inside the long lines. */
	in.max_size = (data[0] >> 1) == 127 ? UINT64_MAX :
	    (uint64_t)(data[0] >> 1) * 97;
	in.initial = data[1] % 64;
	rng = data[1] * 2654435761u + 1;
	in.ncuts = data[1] % FUZZ_CUTS;
	for (i = 0; i < in.ncuts; i++) {
		rng = rng * 1103515245u + 12345u;
		cuts[i] = in.n == 0 ? 0 : (rng >> 8) % (in.n + 1);
		if (i > 0 && cuts[i] < cuts[i - 1])
			cuts[i] = cuts[i - 1];
	}
	in.cuts = cuts;
	dsm_model(&model, &in);
	dsm_scan(&scan, &in);
	diff = dsm_diff(&model, &scan);
	if (diff != NULL) {
		fprintf(stderr, "fuzz_datascan: %s differs\n", diff);
		abort();
	}
	dsm_free(&model);
	dsm_free(&scan);
	return 0;
}
