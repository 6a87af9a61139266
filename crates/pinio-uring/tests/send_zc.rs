//! SEND_ZC from registered regions over loopback TCP: every byte arrives,
//! the slice comes back only after the notification, and the kernel's
//! report of copying is passed on (loopback always copies).

mod common;

use common::Scratch;
use pinio_core::conformance::pattern;
use pinio_core::{Device, DmaBuf, Error};
use pinio_uring::net::ZcSender;
use pinio_uring::{UringDevice, UringOptions};
use std::io::Read;
use std::net::{TcpListener, TcpStream};

fn pair() -> (TcpStream, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let rx = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    });
    (TcpStream::connect(addr).unwrap(), rx)
}

#[test]
fn send_zc_delivers_every_byte_and_reports_copying() {
    let f = Scratch::new("sendzc", 1 << 20);
    let dev = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    let region = dev.register(DmaBuf::new(8 << 20).unwrap()).unwrap();
    assert!(region.key().is_registered());
    let (stream, rx) = pair();
    let mut tx = ZcSender::new(dev.domain(), stream).unwrap();
    let sizes = [1usize, 4096, 65536 + 17, 1 << 20, 6 << 20];
    let mut expect = Vec::new();
    let mut off = 0;
    for (i, &len) in sizes.iter().enumerate() {
        let mut s = region.slice(off, len).unwrap();
        s.copy_from_slice(&pattern(i as u64, len));
        expect.extend_from_slice(&s);
        let sent = tx.send(s).unwrap();
        assert_eq!(sent.bytes, len);
        assert!(sent.fixed, "sent from the registered buffer");
        assert!(sent.copied, "loopback TCP always copies, and the kernel must say so");
        // The slice is ours again: overwrite it; the receiver must not see this.
        let mut s = sent.slice;
        s.fill(0xee);
        off += len;
    }
    let st = tx.stats();
    assert_eq!(st.bytes, sizes.iter().sum::<usize>() as u64);
    assert!(st.sends >= sizes.len() as u64 && st.fixed_sends == st.sends && st.copied_sends == st.sends, "{st:?}");
    assert_eq!(st.notifications, st.sends, "every send's notification was waited for: {st:?}");
    drop(tx);
    let got = rx.join().unwrap();
    assert_eq!(got.len(), expect.len());
    assert!(got == expect, "received bytes differ from what was sent");
}

#[test]
fn send_zc_refuses_a_foreign_slice_and_works_unregistered() {
    let f = Scratch::new("sendzc-foreign", 1 << 20);
    let dev = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    let other = UringDevice::open(&f.path, UringOptions { fixed_buffers: false, ..UringOptions::default() }).unwrap();
    let (stream, rx) = pair();
    let mut tx = ZcSender::new(dev.domain(), stream).unwrap();
    let foreign = other.alloc(4096).unwrap();
    let e = tx.send(foreign.slice(0, 4096).unwrap()).unwrap_err();
    assert!(matches!(e.error, Error::ForeignRegion { .. }), "{}", e.error);
    let mut s = e.slice.expect("the slice comes back");
    drop(tx);
    assert!(rx.join().unwrap().is_empty());

    // A device without fixed buffers sends from plain memory.
    let (stream, rx) = pair();
    let mut tx = ZcSender::new(other.domain(), stream).unwrap();
    s.fill(0x42);
    let sent = tx.send(s).unwrap();
    assert!(!sent.fixed && sent.bytes == 4096);
    drop(tx);
    assert_eq!(rx.join().unwrap(), vec![0x42; 4096]);
}

#[test]
fn a_sender_sends_regions_of_every_file_of_its_domain() {
    let (fa, fb) = (Scratch::new("sendzc-dom-a", 1 << 20), Scratch::new("sendzc-dom-b", 1 << 20));
    let a = UringDevice::open(&fa.path, UringOptions::default()).unwrap();
    let b = UringDevice::open_in(a.domain(), &fb.path, UringOptions::default()).unwrap();
    let (stream, rx) = pair();
    let mut tx = ZcSender::new(a.domain(), stream).unwrap();
    // Registered through the other file, after the sender's ring subscribed:
    // the table update reaches it.
    let region = b.register(DmaBuf::new(1 << 20).unwrap()).unwrap();
    let mut q = b.queue(2).unwrap();
    let (n, s) = q.read_at(region.slice(0, 1 << 20).unwrap(), 0).unwrap();
    assert_eq!(n, 1 << 20);
    let sent = tx.send(s).unwrap();
    assert!(sent.fixed && sent.bytes == 1 << 20);
    drop((sent, tx));
    assert!(rx.join().unwrap() == std::fs::read(&fb.path).unwrap(), "the file's bytes, sent from the shared region");
    // A region of another domain is foreign to the sender.
    let other = UringDevice::open(&fb.path, UringOptions::default()).unwrap();
    let (stream, rx) = pair();
    let mut tx = ZcSender::new(a.domain(), stream).unwrap();
    let e = tx.send(other.alloc(4096).unwrap().slice(0, 4096).unwrap()).unwrap_err();
    assert!(matches!(e.error, Error::ForeignRegion { .. }), "{}", e.error);
    drop(tx);
    assert!(rx.join().unwrap().is_empty());
}

/// The non-blocking half: `start` returns at once, the ring fd becomes
/// readable, `poll_sent` hands the slice back only with the notification;
/// one send at a time; a sender dropped mid-send waits for its notification.
#[test]
fn start_and_poll_sent_without_blocking() {
    let f = Scratch::new("sendzc-start", 1 << 20);
    let dev = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    let region = dev.register(DmaBuf::new(8 << 20).unwrap()).unwrap();
    let (stream, rx) = pair();
    let mut tx = ZcSender::new(dev.domain(), stream).unwrap();
    let mut expect = Vec::new();
    for (i, len) in [4096usize, 1 << 20, 3 << 20].into_iter().enumerate() {
        let off = [0, 4096, 4096 + (1 << 20)][i];
        let mut s = region.slice(off, len).unwrap();
        s.copy_from_slice(&pattern(100 + i as u64, len));
        expect.extend_from_slice(&s);
        tx.start(s).unwrap();
        // A second send while one is under way is refused with its slice.
        let extra = region.slice((8 << 20) - 4096, 4096).unwrap();
        let e = tx.start(extra).unwrap_err();
        assert!(matches!(e.error, Error::QueueFull { .. }) && e.slice.is_some(), "{}", e.error);
        let sent = loop {
            if let Some(r) = tx.poll_sent() {
                break r.unwrap();
            }
            let mut pfd = libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&tx.completion_fd()),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd on the stack.
            let n = unsafe { libc::poll(&mut pfd, 1, 20_000) };
            assert_eq!(n, 1, "the ring fd never became readable");
        };
        assert_eq!(sent.bytes, len);
        assert!(sent.fixed);
        assert!(tx.poll_sent().is_none(), "nothing under way once the slice is back");
    }
    let st = tx.stats();
    assert_eq!(st.notifications, st.sends, "{st:?}");
    // Dropped with a send under way: the drop waits for its notification.
    let mut s = region.slice(0, 4096).unwrap();
    s.fill(0x5c);
    expect.extend_from_slice(&s);
    tx.start(s).unwrap();
    drop(tx);
    assert_eq!(region.live_slices(), 0, "the sender's drop released the slice after its notification");
    let got = rx.join().unwrap();
    assert!(got == expect, "received bytes differ from what was sent");
}
