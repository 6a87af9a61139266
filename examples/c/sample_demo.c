// SPDX-License-Identifier: MIT OR Apache-2.0
//
// The /dev/Sample demonstration: hand the kernel a page holding "krishna"; the module pins the
// page, reads the greeting, writes "Mohan" in place and unpins it.
//
//   gcc -O2 -Wall -static -o sample_demo examples/c/sample_demo.c && ./sample_demo
//   -> data is Mohan
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	char *buf;
	int fd, err;
	ssize_t n;

	err = posix_memalign((void **)&buf, 4096, 4096);
	if (err) {
		fprintf(stderr, "posix_memalign: %s\n", strerror(err));
		return 1;
	}
	memset(buf, 0, 4096);
	strcpy(buf, "krishna");

	fd = open("/dev/Sample", O_WRONLY);
	if (fd < 0) {
		perror("open /dev/Sample (is pinio.ko loaded?)");
		return 1;
	}
	n = write(fd, buf, 4096);
	if (n != 4096) {
		perror("write /dev/Sample");
		return 1;
	}
	close(fd);
	printf("data is %s\n", buf);
	free(buf);
	return 0;
}
