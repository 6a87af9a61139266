//! Child processes for the scenarios: `fork` with a closure, pipes to synchronise, `SIGKILL`,
//! and `waitpid`.
//!
//! The test binaries of this crate run without libtest's harness, so they fork from a
//! single-threaded process and children may allocate. Children still leave through `_exit`, so
//! no destructor of the parent's objects (open files, mappings) runs twice.

use crate::{Errno, FuzzError};

/// A pipe: `read` end and `write` end, both closed on drop.
#[derive(Debug)]
pub struct Pipe {
    /// The read end.
    pub rd: i32,
    /// The write end.
    pub wr: i32,
}

impl Pipe {
    /// A new pipe.
    pub fn new() -> Result<Pipe, FuzzError> {
        let mut fds = [0i32; 2];
        // SAFETY: `fds` is a valid array of two ints.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(FuzzError::setup("pipe", "out of file descriptors?"));
        }
        Ok(Pipe { rd: fds[0], wr: fds[1] })
    }

    /// Writes one `u64` (a child's result or a go signal).
    pub fn send(&self, v: u64) -> Result<(), FuzzError> {
        let b = v.to_le_bytes();
        // SAFETY: Writes 8 bytes from a valid buffer.
        let n = unsafe { libc::write(self.wr, b.as_ptr().cast(), 8) };
        if n != 8 {
            return Err(FuzzError::setup("writing to a pipe", "the other side exited?"));
        }
        Ok(())
    }

    /// Reads one `u64`; `None` at end of file (every writer closed or exited).
    pub fn recv(&self) -> Result<Option<u64>, FuzzError> {
        let mut b = [0u8; 8];
        let mut got = 0;
        while got < 8 {
            // SAFETY: Reads into the unfilled tail of a valid buffer.
            let n = unsafe { libc::read(self.rd, b[got..].as_mut_ptr().cast(), 8 - got) };
            if n < 0 && Errno::last().0 == libc::EINTR {
                continue;
            }
            if n < 0 {
                return Err(FuzzError::setup("reading from a pipe", "unexpected pipe error"));
            }
            if n == 0 {
                return Ok(None);
            }
            got += n as usize;
        }
        Ok(Some(u64::from_le_bytes(b)))
    }

    /// Closes the write end (so the reader sees end of file once every other writer is gone).
    pub fn close_write(&mut self) {
        if self.wr >= 0 {
            // SAFETY: Our own descriptor, closed once.
            unsafe { libc::close(self.wr) };
            self.wr = -1;
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // SAFETY: Our own descriptors, closed once.
        unsafe {
            libc::close(self.rd);
            if self.wr >= 0 {
                libc::close(self.wr);
            }
        }
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `_exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// A forked child, killed and reaped on drop if still running.
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    reaped: bool,
}

/// Forks; the child runs `body` and `_exit`s with its result (0 for `Ok`, 1 after printing the
/// error for `Err`).
pub fn fork(body: impl FnOnce() -> Result<(), FuzzError>) -> Result<Child, FuzzError> {
    // SAFETY: The test binaries are single-threaded when they fork (no libtest harness), so the
    // child may run arbitrary code; it leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(FuzzError::setup("fork", "process limit reached?"));
    }
    if pid == 0 {
        let code = match body() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("child {}: {e}", std::process::id());
                1
            }
        };
        // SAFETY: Leaves the child without running the parent's destructors or atexit handlers.
        unsafe { libc::_exit(code) };
    }
    Ok(Child { pid, reaped: false })
}

impl Child {
    /// The child's process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `SIGKILL`.
    pub fn kill(&self) {
        // SAFETY: `pid` is our unreaped child, so it cannot be a recycled process id.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }

    /// Waits for the child to end.
    pub fn wait(mut self) -> Result<Exit, FuzzError> {
        self.reap()
    }

    fn reap(&mut self) -> Result<Exit, FuzzError> {
        let mut status = 0;
        loop {
            // SAFETY: Waits for our own child; `status` is a valid int.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r == self.pid {
                break;
            }
            if r < 0 && Errno::last().0 == libc::EINTR {
                continue;
            }
            return Err(FuzzError::setup(format!("waitpid({})", self.pid), "child already reaped?"));
        }
        self.reaped = true;
        if libc::WIFSIGNALED(status) {
            Ok(Exit::Signal(libc::WTERMSIG(status)))
        } else {
            Ok(Exit::Code(libc::WEXITSTATUS(status)))
        }
    }

    /// Waits for a clean `Ok(())` exit of the child body.
    pub fn expect_success(self, what: &str) -> Result<(), FuzzError> {
        match self.wait()? {
            Exit::Code(0) => Ok(()),
            other => Err(FuzzError::Check(format!("{what}: child ended with {other:?} (its stderr says why)"))),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            let _ = self.reap();
        }
    }
}
