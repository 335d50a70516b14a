/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The data pattern of the storage tests (odp_storage.c, odp_flush.c): the
 * byte at file offset @off of pattern @seed, never constant, never 0, so
 * that a byte written by the wrong operation or read from the wrong place is
 * told apart from the right one and from a hole.
 */
#ifndef TESTS_PATTERN_H
#define TESTS_PATTERN_H

#include "tap.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline unsigned char pat(unsigned int seed, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ULL ^ (seed * 0xbf58476d1ce4e5b9ULL);

	x ^= x >> 29;
	return (unsigned char)(x % 255) + 1;
}

static inline void fill(unsigned char *p, unsigned int seed, uint64_t off,
			size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pat(seed, off + i);
}

/* Every byte of @p against pattern @seed (0: zeros); reports the first bad one. */
static inline bool same(const unsigned char *p, unsigned int seed,
			uint64_t off, size_t len, const char *what)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char want = seed ? pat(seed, off + i) : 0;

		if (p[i] != want) {
			tap_diag("%s: byte at file offset %" PRIu64 " is %#x, expected %#x",
				 what, off + i, p[i], want);
			return false;
		}
	}
	return true;
}

#endif
