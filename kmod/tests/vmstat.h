// SPDX-License-Identifier: GPL-2.0
// Reads the FOLL_PIN counters of /proc/vmstat (Documentation/core-api/pin_user_pages.rst).
#ifndef PINIO_TEST_VMSTAT_H
#define PINIO_TEST_VMSTAT_H
#include <stdio.h>
#include <string.h>

/* nr_foll_pin_acquired - nr_foll_pin_released, or -1 if /proc/vmstat cannot be read. */
static inline long foll_pin_outstanding(void)
{
	FILE *f = fopen("/proc/sys/vm/stat_refresh", "w");
	char key[64];
	long value, acquired = -1, released = -1;

	/* Fold the per-CPU deltas so the counters are exact (root only; best effort). */
	if (f) {
		fputs("1\n", f);
		fclose(f);
	}
	f = fopen("/proc/vmstat", "r");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", key, &value) == 2) {
		if (!strcmp(key, "nr_foll_pin_acquired"))
			acquired = value;
		else if (!strcmp(key, "nr_foll_pin_released"))
			released = value;
	}
	fclose(f);
	if (acquired < 0 || released < 0)
		return -1;
	return acquired - released;
}
#endif
