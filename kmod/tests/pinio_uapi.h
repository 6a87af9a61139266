// SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0
/*
 * The /dev/pinio ABI (version 2) for C clients.
 *
 * Generated from crates/pinio-kmod/src/abi.rs, the source of truth, by
 * pinio_kmod::abi_c::c_header(): do not edit. crates/pinio-kmod/tests/abi_header.rs checks
 * this file and docs/kmod.md against abi.rs; regenerate them with
 * PINIO_BLESS=1 cargo test -p pinio-kmod --test abi_header
 */
#ifndef PINIO_UAPI_H
#define PINIO_UAPI_H

#include <linux/ioctl.h>
#include <stdint.h>

/*
 * Version of this ABI; reported by PINIO_IOC_INFO in pinio_info.abi_version. Version 2 added
 * PINIO_IOC_REGISTER_VEC and PINIO_IOC_UNREGISTER_VEC.
 */
#define PINIO_ABI_VERSION 2u
/* The ioctl type byte ("magic") of /dev/pinio. */
#define PINIO_IOC_MAGIC 0xB7u

/* pinio_register.access bit: the device may read the region (descriptors PINIO_DIR_TO_DEVICE). */
#define PINIO_ACCESS_DEVICE_READ (1u << 0)
/*
 * pinio_register.access bit: the device may write the region (descriptors
 * PINIO_DIR_FROM_DEVICE); the pages are pinned with FOLL_WRITE and dirtied when written.
 */
#define PINIO_ACCESS_DEVICE_WRITE (1u << 1)
/* All access bits this ABI version knows. */
#define PINIO_ACCESS_ALL (PINIO_ACCESS_DEVICE_READ | PINIO_ACCESS_DEVICE_WRITE)

/* pinio_desc.dir: the device copies region bytes into its memory (memory -> device). */
#define PINIO_DIR_TO_DEVICE 1u
/* pinio_desc.dir: the device copies its memory into the region (device -> memory). */
#define PINIO_DIR_FROM_DEVICE 2u

/* Most entries in one PINIO_IOC_REGISTER_VEC or PINIO_IOC_UNREGISTER_VEC call. */
#define PINIO_MAX_VEC 4096u

/* Answer of PINIO_IOC_INFO: the device and the limits of the calling open file. */
struct pinio_info { /* 48 bytes */
	/* PINIO_ABI_VERSION of the module. */
	uint32_t abi_version;
	/* Page size of the kernel in bytes. */
	uint32_t page_size;
	/* Size of the device memory in bytes (module parameter mem_size). */
	uint64_t dev_mem_size;
	/* Most pages one open file may keep pinned (module parameter max_pinned_pages). */
	uint64_t max_pinned_pages;
	/* Pages this open file has pinned now. */
	uint64_t pinned_pages;
	/*
	 * Most descriptors submitted and not yet reaped per open file (module parameter
	 * queue_depth); also the size of the completion queue.
	 */
	uint32_t queue_depth;
	/* Most descriptors in one PINIO_IOC_SUBMIT call (equals queue_depth). */
	uint32_t max_batch;
	/* Descriptors of this open file submitted and not yet reaped. */
	uint32_t outstanding;
	/* Registered regions of this open file. */
	uint32_t regions;
};

/* Argument of PINIO_IOC_REGISTER. */
struct pinio_register { /* 24 bytes */
	/* User virtual address of the buffer; any alignment. */
	uint64_t addr;
	/* Length in bytes; not zero. */
	uint64_t len;
	/* A non-empty set of PINIO_ACCESS_* bits. */
	uint32_t access;
	/* Output: the region id (never 0). */
	uint32_t region_id;
};

/* Argument of PINIO_IOC_UNREGISTER. */
struct pinio_unregister { /* 8 bytes */
	/* The region id returned by PINIO_IOC_REGISTER. */
	uint32_t region_id;
	/* Must be zero. */
	uint32_t reserved;
};

/* Argument of PINIO_IOC_REGISTER_VEC and PINIO_IOC_UNREGISTER_VEC. */
struct pinio_vec { /* 16 bytes */
	/*
	 * User address of an array of count struct pinio_register (REGISTER_VEC: read, and each
	 * region_id written) or struct pinio_unregister (UNREGISTER_VEC: read).
	 */
	uint64_t entries;
	/* Number of entries, 1..=PINIO_MAX_VEC. */
	uint32_t count;
	/* Must be zero. */
	uint32_t flags;
};

/* One DMA descriptor: copy len bytes between a region and the device memory. */
struct pinio_desc { /* 40 bytes */
	/* Opaque value returned in the completion record. */
	uint64_t tag;
	/* Byte offset inside the region. */
	uint64_t region_offset;
	/* Byte offset inside the device memory. */
	uint64_t dev_offset;
	/* Number of bytes; not zero. */
	uint64_t len;
	/* Region id of the calling open file. */
	uint32_t region_id;
	/* PINIO_DIR_TO_DEVICE or PINIO_DIR_FROM_DEVICE. */
	uint32_t dir;
};

/* Argument of PINIO_IOC_SUBMIT. */
struct pinio_submit { /* 16 bytes */
	/* User address of an array of count struct pinio_desc. */
	uint64_t descs;
	/* Number of descriptors, 1..=pinio_info.max_batch. */
	uint32_t count;
	/* Must be zero. */
	uint32_t flags;
};

/* A completion record, one per finished descriptor, in completion order. */
struct pinio_completion { /* 24 bytes */
	/* pinio_desc.tag of the finished descriptor. */
	uint64_t tag;
	/* Bytes transferred (equal to pinio_desc.len on success). */
	uint64_t bytes;
	/* 0 on success or a negative errno. */
	int32_t status;
	/* Zero. */
	uint32_t reserved;
};

/* Argument of PINIO_IOC_REAP. */
struct pinio_reap { /* 24 bytes */
	/* User address of an array of max struct pinio_completion. */
	uint64_t records;
	/* Capacity of records; not zero. */
	uint32_t max;
	/*
	 * Wait (interruptibly) until at least this many records are available, at most max
	 * and at most the number outstanding; 0 never waits.
	 */
	uint32_t min;
	/* Output: number of records written. */
	uint32_t count;
	/* Must be zero. */
	uint32_t reserved;
};

/* PINIO_IOC_INFO: fills a struct pinio_info. */
#define PINIO_IOC_INFO _IOR(PINIO_IOC_MAGIC, 0x01, struct pinio_info) /* 0x8030B701 */
/* PINIO_IOC_REGISTER: pins a buffer and returns its region id in pinio_register.region_id. */
#define PINIO_IOC_REGISTER _IOWR(PINIO_IOC_MAGIC, 0x02, struct pinio_register) /* 0xC018B702 */
/* PINIO_IOC_UNREGISTER: unpins a region; EBUSY while DMA on it is in flight. */
#define PINIO_IOC_UNREGISTER _IOW(PINIO_IOC_MAGIC, 0x03, struct pinio_unregister) /* 0x4008B703 */
/* PINIO_IOC_SUBMIT: queues a batch of struct pinio_desc; all or nothing. Returns the count queued. */
#define PINIO_IOC_SUBMIT _IOW(PINIO_IOC_MAGIC, 0x04, struct pinio_submit) /* 0x4010B704 */
/* PINIO_IOC_REAP: copies completion records out; may wait for pinio_reap.min of them. */
#define PINIO_IOC_REAP _IOWR(PINIO_IOC_MAGIC, 0x05, struct pinio_reap) /* 0xC018B705 */
/*
 * PINIO_IOC_REGISTER_VEC: registers every buffer of an array of struct pinio_register in one call,
 * or none, and writes each region id into its entry. Returns the count registered.
 */
#define PINIO_IOC_REGISTER_VEC _IOW(PINIO_IOC_MAGIC, 0x06, struct pinio_vec) /* 0x4010B706 */
/*
 * PINIO_IOC_UNREGISTER_VEC: unregisters every region of an array of struct pinio_unregister in one
 * call, or none. Returns the count unregistered.
 */
#define PINIO_IOC_UNREGISTER_VEC _IOW(PINIO_IOC_MAGIC, 0x07, struct pinio_vec) /* 0x4010B707 */

/* The sizes of abi.rs; the ioctl numbers encode them. */
_Static_assert(sizeof(struct pinio_info) == 48, "struct pinio_info is 48 bytes");
_Static_assert(sizeof(struct pinio_register) == 24, "struct pinio_register is 24 bytes");
_Static_assert(sizeof(struct pinio_unregister) == 8, "struct pinio_unregister is 8 bytes");
_Static_assert(sizeof(struct pinio_vec) == 16, "struct pinio_vec is 16 bytes");
_Static_assert(sizeof(struct pinio_desc) == 40, "struct pinio_desc is 40 bytes");
_Static_assert(sizeof(struct pinio_submit) == 16, "struct pinio_submit is 16 bytes");
_Static_assert(sizeof(struct pinio_completion) == 24, "struct pinio_completion is 24 bytes");
_Static_assert(sizeof(struct pinio_reap) == 24, "struct pinio_reap is 24 bytes");

#endif /* PINIO_UAPI_H */
