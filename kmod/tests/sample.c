// SPDX-License-Identifier: GPL-2.0
//
// Guest test of /dev/Sample: the reply lands in place, the page is unpinned, a read-only or
// unmapped buffer gets EFAULT, a too-short write EINVAL.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmstat.h"

static int failures;

#define CHECK(cond, ...)                                                                 \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);              \
			fprintf(stderr, __VA_ARGS__);                                     \
			fprintf(stderr, "\n");                                            \
			failures++;                                                      \
		}                                                                        \
	} while (0)

int main(void)
{
	long before = foll_pin_outstanding();
	int fd = open("/dev/Sample", O_WRONLY);
	char *buf;
	ssize_t n;

	if (fd < 0) {
		perror("open /dev/Sample");
		return 1;
	}

	/* The classic case: a page-aligned buffer holding "krishna". */
	if (posix_memalign((void **)&buf, 4096, 4096))
		return 1;
	memset(buf, 0, 4096);
	strcpy(buf, "krishna");
	n = write(fd, buf, 4096);
	CHECK(n == 4096, "write returned %zd (%s)", n, strerror(errno));
	CHECK(strcmp(buf, "Mohan") == 0, "buffer holds '%s', expected 'Mohan'", buf);
	CHECK(buf[6] == 'a' && buf[7] == 0, "bytes after the reply changed: %#x %#x", buf[6], buf[7]);

	/* A reply that straddles a page boundary (both pages are pinned). */
	char *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(two != MAP_FAILED, "mmap");
	char *at = two + 4096 - 3;
	strcpy(at, "hi");
	n = write(fd, at, 6);
	CHECK(n == 6, "straddling write returned %zd (%s)", n, strerror(errno));
	CHECK(memcmp(at, "Mohan", 6) == 0, "straddling reply is '%.6s'", at);

	/* Too short for the reply. */
	n = write(fd, buf, 5);
	CHECK(n == -1 && errno == EINVAL, "5-byte write: %zd errno %d, expected EINVAL", n, errno);

	/* Read-only mapping: the writable pin is refused. */
	char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(ro != MAP_FAILED, "mmap ro");
	n = write(fd, ro, 4096);
	CHECK(n == -1 && errno == EFAULT, "read-only buffer: %zd errno %d, expected EFAULT", n, errno);

	/* Unmapped address. */
	munmap(two, 8192);
	n = write(fd, two, 4096);
	CHECK(n == -1 && errno == EFAULT, "unmapped buffer: %zd errno %d, expected EFAULT", n, errno);

	close(fd);
	long after = foll_pin_outstanding();
	CHECK(after == before, "pins outstanding %ld before, %ld after", before, after);

	if (failures) {
		fprintf(stderr, "sample: %d failure(s)\n", failures);
		return 1;
	}
	printf("sample: ok (data is %s)\n", buf);
	return 0;
}
