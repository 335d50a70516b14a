// SPDX-License-Identifier: GPL-2.0
/* TAP output for the project's C tests, see tap.h */
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>

int tap_n, tap_failed;

static void tap_line(const char *prefix, const char *fmt, va_list ap)
{
	printf("%s %d ", prefix, ++tap_n);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
}

void tap(bool ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_line(ok ? "ok" : "not ok", fmt, ap);
	va_end(ap);
	tap_failed += !ok;
}

void tap_skip(const char *fmt, ...)
{
	va_list ap;

	printf("ok %d # SKIP ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

int tap_done(void)
{
	printf("1..%d\n", tap_n);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}
