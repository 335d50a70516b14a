/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TAP output for the project's C tests: one "ok N ..." / "not ok N ..." line
 * per check, skips marked "# SKIP", and the plan at the end.
 */
#ifndef TESTS_TAP_H
#define TESTS_TAP_H

#include <stdbool.h>

/* Number of checks printed so far, and of those that failed */
extern int tap_n, tap_failed;

/* Print one check: "ok N <message>" or "not ok N <message>" */
void tap(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print a check that could not run: "ok N # SKIP <reason>" */
void tap_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print a diagnostic line: "# <message>" */
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the plan; returns the exit status: 1 if a check failed, else 0 */
int tap_done(void);

#endif
