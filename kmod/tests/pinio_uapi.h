// SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0
// The /dev/pinio ABI for C clients, exactly as written in docs/kmod.md ("A C header equivalent
// to abi.rs"); kmod/tests/c_client.c checks it against the module.
#ifndef PINIO_UAPI_H
#define PINIO_UAPI_H
#include <linux/ioctl.h>
#include <stdint.h>

#define PINIO_ABI_VERSION 1
#define PINIO_ACCESS_DEVICE_READ  (1u << 0) /* device may read the region (TO_DEVICE)   */
#define PINIO_ACCESS_DEVICE_WRITE (1u << 1) /* device may write it (FROM_DEVICE); FOLL_WRITE */
#define PINIO_DIR_TO_DEVICE   1             /* region bytes -> device memory */
#define PINIO_DIR_FROM_DEVICE 2             /* device memory -> region bytes */

struct pinio_info {            /* 48 bytes */
	uint32_t abi_version;      /* PINIO_ABI_VERSION */
	uint32_t page_size;
	uint64_t dev_mem_size;     /* bytes of device memory */
	uint64_t max_pinned_pages; /* per-open cap */
	uint64_t pinned_pages;     /* pinned by this open file now */
	uint32_t queue_depth;      /* max outstanding descriptors per open file */
	uint32_t max_batch;        /* max descriptors per SUBMIT (= queue_depth) */
	uint32_t outstanding;      /* submitted and not yet reaped */
	uint32_t regions;          /* registered regions of this open file */
};
struct pinio_register {        /* 24 bytes */
	uint64_t addr;             /* any alignment */
	uint64_t len;              /* > 0 */
	uint32_t access;           /* non-empty set of PINIO_ACCESS_* */
	uint32_t region_id;        /* out: never 0 */
};
struct pinio_unregister {      /* 8 bytes */
	uint32_t region_id;
	uint32_t reserved;
};
struct pinio_desc {            /* 40 bytes */
	uint64_t tag;              /* returned in the completion record */
	uint64_t region_offset;    /* byte offset in the region */
	uint64_t dev_offset;       /* byte offset in device memory */
	uint64_t len;              /* > 0 */
	uint32_t region_id;
	uint32_t dir;              /* PINIO_DIR_* */
};
struct pinio_submit {          /* 16 bytes */
	uint64_t descs;            /* address of count struct pinio_desc */
	uint32_t count;            /* 1 .. max_batch */
	uint32_t flags;            /* 0 */
};
struct pinio_completion {      /* 24 bytes */
	uint64_t tag;
	uint64_t bytes;            /* bytes moved (= len on success) */
	int32_t  status;           /* 0 or -errno */
	uint32_t reserved;
};
struct pinio_reap {            /* 24 bytes */
	uint64_t records;          /* address of max struct pinio_completion */
	uint32_t max;              /* > 0 */
	uint32_t min;              /* wait for this many (capped at max and at outstanding); 0: never wait */
	uint32_t count;            /* out: records written */
	uint32_t reserved;
};
#define PINIO_IOC_INFO       _IOR(0xB7, 1, struct pinio_info)
#define PINIO_IOC_REGISTER   _IOWR(0xB7, 2, struct pinio_register)
#define PINIO_IOC_UNREGISTER _IOW(0xB7, 3, struct pinio_unregister)
#define PINIO_IOC_SUBMIT     _IOW(0xB7, 4, struct pinio_submit)
#define PINIO_IOC_REAP       _IOWR(0xB7, 5, struct pinio_reap)

_Static_assert(sizeof(struct pinio_info) == 48, "pinio_info");
_Static_assert(sizeof(struct pinio_register) == 24, "pinio_register");
_Static_assert(sizeof(struct pinio_unregister) == 8, "pinio_unregister");
_Static_assert(sizeof(struct pinio_desc) == 40, "pinio_desc");
_Static_assert(sizeof(struct pinio_submit) == 16, "pinio_submit");
_Static_assert(sizeof(struct pinio_completion) == 24, "pinio_completion");
_Static_assert(sizeof(struct pinio_reap) == 24, "pinio_reap");
#endif
