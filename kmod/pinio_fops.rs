// SPDX-License-Identifier: GPL-2.0

//! `file_operations` of `/dev/pinio`.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/poll.h`](srctree/include/linux/poll.h).
//!
//! - `open` creates a [`Session`]; `release` shuts it down (waits for in-flight DMA, unpins).
//! - `ioctl`: INFO, REGISTER, UNREGISTER, SUBMIT, REAP, REGISTER_VEC, UNREGISTER_VEC (see
//!   `abi.rs`); anything else `ENOTTY`.
//! - `poll`: `EPOLLIN` when completion records wait, `EPOLLOUT` when another descriptor fits.
//! - `pread`/`pwrite` (and `read`/`write` at the file position): the copy path into device
//!   memory through `copy_to_user`/`copy_from_user`.

use crate::{abi, devmem::DeviceMemory, misc::MiscRegistration, session::Session};
use kernel::{
    bindings,
    container_of,
    fs::File,
    prelude::*,
    sync::{poll::PollTable, Arc},
    types::ForeignOwnable,
    uaccess::UserSlice,
};

/// `EPOLLIN | EPOLLRDNORM` (include/uapi/linux/eventpoll.h).
const POLL_READABLE: bindings::__poll_t = 0x0001 | 0x0040;
/// `EPOLLOUT | EPOLLWRNORM`.
const POLL_WRITABLE: bindings::__poll_t = 0x0004 | 0x0100;

/// `/dev/pinio` and the device memory its sessions share.
///
/// # Invariants
///
/// While `misc` is registered, `dev` is initialised: the initializer in `pinio.rs` initialises
/// `dev` before registering `misc`, and fields drop in declaration order (`misc` first).
#[pin_data]
pub(crate) struct PinioDevice {
    #[pin]
    pub(crate) misc: MiscRegistration,
    pub(crate) dev: Arc<DeviceMemory>,
}

/// The `file_operations` of `/dev/pinio`.
pub(crate) const PINIO_FOPS: bindings::file_operations = bindings::file_operations {
    owner: kernel::module::this_module::<crate::PinioModule>().as_ptr(),
    open: Some(open),
    release: Some(release),
    read: Some(read),
    write: Some(write),
    llseek: Some(bindings::default_llseek),
    unlocked_ioctl: Some(ioctl),
    #[cfg(CONFIG_COMPAT)]
    compat_ioctl: Some(bindings::compat_ptr_ioctl),
    poll: Some(poll),
    ..pin_init::zeroed()
};

/// Borrows the session stored in `file->private_data` by [`open`].
///
/// # Safety
///
/// `file` must be an open `/dev/pinio` file whose `open` succeeded and whose `release` has not
/// run; the result must not outlive the current file operation.
unsafe fn session<'a>(file: *mut bindings::file) -> <Arc<Session> as ForeignOwnable>::Borrowed<'a> {
    // SAFETY: Per the contract `private_data` holds `Arc<Session>::into_foreign` from `open`,
    // and `release` (the only `from_foreign`) cannot run during a file operation.
    unsafe { <Arc<Session> as ForeignOwnable>::borrow((*file).private_data) }
}

/// # Safety
///
/// Called by the VFS through `misc_open` for a file of the `PinioDevice::misc` registration.
unsafe extern "C" fn open(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: `misc_open` set `private_data` to the registered `struct miscdevice`, which is the
    // `misc` field of a `PinioDevice` (`MiscRegistration` is `repr(transparent)`).
    let pdev = unsafe {
        let misc = (*file).private_data.cast::<MiscRegistration>();
        &*container_of!(misc, PinioDevice, misc)
    };
    match Session::new(pdev.dev.clone()) {
        Ok(session) => {
            // SAFETY: `file` is being opened and is exclusively ours until `open` returns.
            unsafe { (*file).private_data = session.into_foreign() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by the VFS once, when the last reference to a file opened by [`open`] is dropped.
unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: `private_data` holds the `Arc<Session>` from `open`; this is the last use of it.
    let session = unsafe { <Arc<Session> as ForeignOwnable>::from_foreign((*file).private_data) };
    session.shutdown();
    0
}

/// # Safety
///
/// Called by the VFS for an open file of [`open`]; `buf` is a user pointer of `count` bytes.
unsafe extern "C" fn read(
    file: *mut bindings::file,
    buf: *mut c_char,
    count: usize,
    pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: VFS contract (see above).
    let session = unsafe { session(file) };
    let out = UserSlice::new(UserPtr::from_ptr(buf.cast()), count).writer();
    // SAFETY: `pos` is the file position (or the `pread` offset) the VFS passes; valid for the
    // call.
    let pos = unsafe { &mut *pos };
    match session.device().copy_to_user(out, pos) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by the VFS for an open file of [`open`]; `buf` is a user pointer of `count` bytes.
unsafe extern "C" fn write(
    file: *mut bindings::file,
    buf: *const c_char,
    count: usize,
    pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: VFS contract (see above).
    let session = unsafe { session(file) };
    let input = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
    // SAFETY: `pos` is valid for the call (VFS contract).
    let pos = unsafe { &mut *pos };
    match session.device().copy_from_user(input, pos) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by the VFS for an open file of [`open`].
unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: VFS contract (see above).
    let session: Arc<Session> = unsafe { session(file) }.into();
    match dispatch(&session, cmd, arg) {
        Ok(v) => v as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

fn dispatch(session: &Arc<Session>, cmd: u32, arg: usize) -> Result<isize> {
    let user = |size: usize| UserSlice::new(UserPtr::from_addr(arg), size);
    match cmd {
        abi::PINIO_IOC_INFO => {
            let info = session.info();
            user(size_of::<abi::Info>()).writer().write(&info)?;
            Ok(0)
        }
        abi::PINIO_IOC_REGISTER => {
            let (reader, mut writer) = user(size_of::<abi::RegisterArgs>()).reader_writer();
            let mut args: abi::RegisterArgs = crate::session::read_arg(reader)?;
            session.register(&mut args)?;
            if let Err(e) = writer.write(&args) {
                // The caller cannot learn the id: do not leave the region pinned.
                let _ = session.unregister(&abi::UnregisterArgs {
                    region_id: args.region_id,
                    reserved: 0,
                });
                return Err(e);
            }
            Ok(0)
        }
        abi::PINIO_IOC_REGISTER_VEC => {
            let args = crate::session::read_arg(user(size_of::<abi::VecArgs>()).reader())?;
            Ok(session.register_vec(&args)? as isize)
        }
        abi::PINIO_IOC_UNREGISTER_VEC => {
            let args = crate::session::read_arg(user(size_of::<abi::VecArgs>()).reader())?;
            Ok(session.unregister_vec(&args)? as isize)
        }
        abi::PINIO_IOC_UNREGISTER => {
            let args = crate::session::read_arg(user(size_of::<abi::UnregisterArgs>()).reader())?;
            session.unregister(&args)?;
            Ok(0)
        }
        abi::PINIO_IOC_SUBMIT => {
            let args = crate::session::read_arg(user(size_of::<abi::SubmitArgs>()).reader())?;
            Ok(session.submit(&args)? as isize)
        }
        abi::PINIO_IOC_REAP => {
            let (reader, mut writer) = user(size_of::<abi::ReapArgs>()).reader_writer();
            let mut args: abi::ReapArgs = crate::session::read_arg(reader)?;
            // Records are removed once copied out: check first that the count can be written
            // back, or a caller with a read-only argument would lose them (`EFAULT`, none taken).
            user(size_of::<abi::ReapArgs>()).writer().write(&args)?;
            args.count = session.reap(&args)?;
            writer.write(&args)?;
            Ok(args.count as isize)
        }
        _ => Err(ENOTTY),
    }
}

/// # Safety
///
/// Called by the VFS for an open file of [`open`]; `table` is the caller's poll table or null.
unsafe extern "C" fn poll(
    file: *mut bindings::file,
    table: *mut bindings::poll_table_struct,
) -> bindings::__poll_t {
    // SAFETY: VFS contract (see above).
    let session = unsafe { session(file) };
    // SAFETY: `table` is valid (or null, which `poll_wait` accepts) for this call.
    let table = unsafe { PollTable::from_raw(table) };
    // SAFETY: `file` is a valid open file for the duration of this call.
    table.register_wait(unsafe { File::from_raw_file(file) }, session.completed());
    let (readable, writable) = session.readiness();
    let mut mask = 0;
    if readable {
        mask |= POLL_READABLE;
    }
    if writable {
        mask |= POLL_WRITABLE;
    }
    mask
}
