// SPDX-License-Identifier: GPL-2.0
//
// A C client of /dev/pinio written from docs/kmod.md alone: the ioctl numbers match the
// documented values, a 1 MiB echo through the DMA engine round-trips, poll() reports
// readiness, and every pin is released on close.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "pinio_uapi.h"
#include "vmstat.h"

#define FAIL(...)                                                                    \
	do {                                                                         \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                  \
		fprintf(stderr, __VA_ARGS__);                                         \
		fprintf(stderr, " (errno %d %s)\n", errno, strerror(errno));          \
		exit(1);                                                             \
	} while (0)

int main(void)
{
	const size_t len = 1 << 20;
	long pins_before = foll_pin_outstanding();

	if (PINIO_IOC_INFO != 0x8030B701u || PINIO_IOC_REGISTER != 0xC018B702u ||
	    PINIO_IOC_UNREGISTER != 0x4008B703u || PINIO_IOC_SUBMIT != 0x4010B704u ||
	    PINIO_IOC_REAP != 0xC018B705u)
		FAIL("ioctl numbers differ from docs/kmod.md");

	int fd = open("/dev/pinio", O_RDWR);
	if (fd < 0)
		FAIL("open /dev/pinio");
	struct pinio_info info;
	if (ioctl(fd, PINIO_IOC_INFO, &info))
		FAIL("INFO");
	if (info.abi_version != PINIO_ABI_VERSION || info.page_size != 4096 || info.dev_mem_size < len)
		FAIL("INFO: abi %u page %u mem %llu", info.abi_version, info.page_size,
		     (unsigned long long)info.dev_mem_size);

	unsigned char *src = aligned_alloc(4096, len + 4096), *dst = aligned_alloc(4096, len + 4096);
	for (size_t i = 0; i < len + 4096; i++) {
		src[i] = (unsigned char)(i * 7 + 3);
		dst[i] = 0;
	}
	/* Unaligned registrations, one per direction. */
	struct pinio_register rs = { .addr = (uintptr_t)src + 5, .len = len,
				     .access = PINIO_ACCESS_DEVICE_READ };
	struct pinio_register rd = { .addr = (uintptr_t)dst + 5, .len = len,
				     .access = PINIO_ACCESS_DEVICE_WRITE };
	if (ioctl(fd, PINIO_IOC_REGISTER, &rs) || ioctl(fd, PINIO_IOC_REGISTER, &rd))
		FAIL("REGISTER");
	if (rs.region_id == 0 || rd.region_id == 0 || rs.region_id == rd.region_id)
		FAIL("region ids %u %u", rs.region_id, rd.region_id);

	/* Nothing submitted: poll says writable, not readable. */
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	if (poll(&p, 1, 0) != 1 || (p.revents & POLLIN) || !(p.revents & POLLOUT))
		FAIL("idle poll revents %#x", p.revents);

	struct pinio_desc d[2] = {
		{ .tag = 11, .region_id = rs.region_id, .dir = PINIO_DIR_TO_DEVICE,
		  .dev_offset = 777, .len = len },
		{ .tag = 22, .region_id = rd.region_id, .dir = PINIO_DIR_FROM_DEVICE,
		  .dev_offset = 777, .len = len },
	};
	struct pinio_submit s = { .descs = (uintptr_t)d, .count = 2 };
	if (ioctl(fd, PINIO_IOC_SUBMIT, &s) != 2)
		FAIL("SUBMIT");

	/* Wait with poll, then reap. */
	struct pinio_completion c[2];
	unsigned got = 0;
	while (got < 2) {
		p.events = POLLIN;
		if (poll(&p, 1, 60000) != 1 || !(p.revents & POLLIN))
			FAIL("poll for completions: revents %#x", p.revents);
		struct pinio_reap r = { .records = (uintptr_t)(c + got), .max = 2 - got };
		int n = ioctl(fd, PINIO_IOC_REAP, &r);
		if (n < 0 || (unsigned)n != r.count)
			FAIL("REAP returned %d, count %u", n, r.count);
		got += r.count;
	}
	if (c[0].tag != 11 || c[1].tag != 22 || c[0].status || c[1].status || c[0].bytes != len ||
	    c[1].bytes != len)
		FAIL("records: tag %llu/%llu status %d/%d", (unsigned long long)c[0].tag,
		     (unsigned long long)c[1].tag, c[0].status, c[1].status);
	if (memcmp(src + 5, dst + 5, len))
		FAIL("echo differs");
	if (dst[4] || dst[5 + len])
		FAIL("device wrote outside the region");

	/* The copy path sees what the DMA engine wrote. */
	unsigned char probe[64];
	if (pread(fd, probe, sizeof(probe), 777) != sizeof(probe) || memcmp(probe, src + 5, sizeof(probe)))
		FAIL("pread of DMA-written device memory");

	struct pinio_unregister u = { .region_id = rs.region_id };
	if (ioctl(fd, PINIO_IOC_UNREGISTER, &u))
		FAIL("UNREGISTER");
	if (ioctl(fd, PINIO_IOC_UNREGISTER, &u) != -1 || errno != ENOENT)
		FAIL("second UNREGISTER should be ENOENT");
	if (ioctl(fd, _IO(0xB7, 0x42)) != -1 || errno != ENOTTY)
		FAIL("unknown ioctl should be ENOTTY");
	/* rd is still registered: close releases it. */
	close(fd);
	long pins_after = foll_pin_outstanding();
	if (pins_after != pins_before)
		FAIL("pins outstanding %ld before, %ld after close", pins_before, pins_after);
	printf("c_client: ok\n");
	return 0;
}
