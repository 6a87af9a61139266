//! The model of `pinio-core`, re-exported inline so that the facade's
//! documentation shows the whole API, each type with an example that runs
//! as a doctest (on the copy backend, on a scratch file). A doc comment on
//! an inlined re-export is shown before the item's own documentation.
//!
//! `tests/reexports.rs` checks that every public item of `pinio-core` is
//! listed here.

/// Memory a device may access directly: page-aligned, zeroed, owned.
///
/// # Example
///
/// ```
/// let mut buf = pinio::DmaBuf::new(10_000)?;        // rounded up to whole pages
/// assert_eq!(buf.len() % pinio::page_size(), 0);
/// assert_eq!(buf.as_ptr() as usize % pinio::page_size(), 0);
/// buf[..5].copy_from_slice(b"hello");
/// let adopted = pinio::DmaBuf::adopt(vec![1u8; 4096])?; // a caller's buffer, as it is
/// assert_eq!(adopted[4095], 1);
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::DmaBuf;

/// Options of a [`DmaBuf`]: huge pages, pre-faulting.
///
/// # Example
///
/// ```
/// use pinio::{DmaBuf, HugePages};
/// let buf = DmaBuf::builder(4 << 20).huge_pages(HugePages::Transparent).populate(true).build()?;
/// assert_eq!(buf.len(), 4 << 20);
/// // `huge_page_bytes` says whether the kernel actually backed it with huge pages.
/// println!("huge pages: {:?}", buf.huge_page_bytes());
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::DmaBufBuilder;

/// Whether a [`DmaBuf`] asks for huge pages.
///
/// # Example
///
/// ```
/// let buf = pinio::DmaBuf::builder(1 << 20).huge_pages(pinio::HugePages::Never).build()?;
/// assert!(buf.huge_page_bytes().is_none_or(|b| b == 0));
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::HugePages;

/// What a device needs and how it works: alignments, limits, completions,
/// whether the CPU copies.
///
/// # Example
///
/// ```
/// use pinio::Device;
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-caps", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(1 << 20).open()?;
/// let caps = dev.capabilities();
/// assert_eq!(caps.backend, "copy");
/// assert!(caps.cpu_copies && !caps.pins_memory); // the baseline: every byte crosses the CPU
/// assert_eq!(caps.device_size, 1 << 20);
/// let len = pinio::align_up(1000, caps.len_align).unwrap(); // a length the device takes
/// assert!(len >= 1000);
/// # drop(dev); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::Capabilities;

/// How a device reports completions.
///
/// # Example
///
/// ```
/// use pinio::{CompletionMode, Device};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-completion", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(4096).open()?;
/// match dev.capabilities().completion {
///     CompletionMode::Poll => println!("queues spin: give each its own core"),
///     CompletionMode::Interrupt | CompletionMode::Synchronous => println!("waiting sleeps"),
/// }
/// # drop(dev); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::CompletionMode;

/// How far one registration reaches within a device's domain.
///
/// # Example
///
/// ```
/// use pinio::{Device, RegistrationSharing};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-sharing", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(4096).open()?;
/// // Every queue of every device in the domain accepts the domain's regions.
/// assert_eq!(dev.capabilities().sharing, RegistrationSharing::Domain);
/// # drop(dev); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::RegistrationSharing;

/// What a completed write means for durability.
///
/// # Example
///
/// ```
/// use pinio::{Device, FlushMode, Persistence, Queue};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-persistence", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(4096).open()?;
/// let mut q = dev.queue(1)?;
/// if dev.capabilities().persistence == Persistence::WriteBack {
///     q.flush(FlushMode::Data)?; // a file: written data sits in the page cache until flushed
/// }
/// # drop(q); drop(dev); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::Persistence;

/// How a device runs vectored operations (several slices, one device range).
///
/// # Example
///
/// ```
/// use pinio::{Device, Queue, VectoredIo};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-vectored", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(8192).open()?;
/// let caps = dev.capabilities();
/// if caps.vectored != VectoredIo::Unsupported && caps.max_segments >= 2 {
///     let region = dev.alloc(8192)?;
///     let (a, b) = (region.slice(0, 4096)?, region.slice(4096, 4096)?);
///     let (n, _slices) = dev.queue(1)?.writev_at(vec![a, b], 0)?;
///     assert_eq!(n, 8192);
/// }
/// # drop(dev); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::VectoredIo;

/// One opened IO target with a linear device address space, in one domain.
///
/// # Example
///
/// ```
/// use pinio::{Device, Queue};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-device", std::process::id()));
/// let dev: Box<dyn Device> = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(1 << 20).open()?;
/// assert_eq!(dev.size(), 1 << 20);
/// let region = dev.alloc(4096)?;                  // register in the device's domain
/// let mut q = dev.queue(4)?;
/// let (n, _slice) = q.read_at(region.slice(0, 4096)?, 0)?;
/// assert_eq!((n, dev.stats().bytes_read), (4096, 4096));
/// println!("{}: {}", dev.describe(), dev.stats());
/// # drop(q); drop(dev); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::Device;

/// What every device shares, whatever its backend (for backend authors).
///
/// # Example
///
/// ```
/// use pinio::{Device, Direction};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-core", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(4096).open()?;
/// let core = dev.core();
/// assert_eq!(core.domain_id(), dev.domain().id());
/// assert_eq!(core.queue_depth(8)?, 8);                 // a depth the device makes
/// core.record(Direction::Read, &Ok(512));             // a backend counts a completion
/// assert_eq!(core.snapshot().bytes_read, 512);
/// # drop(dev); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::DeviceCore;

/// A device's process-wide identity.
///
/// # Example
///
/// ```
/// use pinio::Device;
/// # let dir = std::env::temp_dir();
/// # let (a, b) = (dir.join(format!("pinio-doc-{}-id-a", std::process::id())), dir.join(format!("pinio-doc-{}-id-b", std::process::id())));
/// let one = pinio::Builder::parse(&format!("copy:{}", a.display()))?.create(4096).open()?;
/// let two = pinio::Builder::parse(&format!("copy:{}", b.display()))?.create(4096).open_in(one.domain())?;
/// assert_ne!(one.id(), two.id());                      // two devices
/// assert_eq!(one.domain().id(), two.domain().id());    // one domain
/// # drop((one, two)); std::fs::remove_file(&a).ok(); std::fs::remove_file(&b).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::DeviceId;

/// Per-batch counts a backend folds into a device's statistics at once.
///
/// # Example
///
/// ```
/// use pinio::{Direction, Stats, Tally};
/// let stats = Stats::default();
/// let mut tally = Tally::default();
/// tally.add(Direction::Read, &Ok(4096));
/// tally.add(Direction::Write, &Ok(512));
/// tally.add(Direction::Write, &Err(pinio::Error::ReadOnly));
/// assert_eq!(tally.bytes(), 4608);
/// tally.fold_into(&stats);
/// let s = stats.snapshot();
/// assert_eq!((s.ops, s.errors, s.bytes_read, s.bytes_written), (3, 1, 4096, 512));
/// ```
#[doc(inline)]
pub use pinio_core::Tally;

/// A registration scope: regions registered in it are accepted by every
/// device opened in it.
///
/// # Example
///
/// ```
/// use pinio::{Device, Queue};
/// # let dir = std::env::temp_dir();
/// # let (a, b) = (dir.join(format!("pinio-doc-{}-domain-a", std::process::id())), dir.join(format!("pinio-doc-{}-domain-b", std::process::id())));
/// let data = pinio::Builder::parse(&format!("copy:{}", a.display()))?.create(4096).open()?;
/// let copy = pinio::Builder::parse(&format!("copy:{}", b.display()))?.create(4096).open_in(data.domain())?;
/// let region = data.domain().alloc(4096)?;             // registered once, in the domain
/// let (_, s) = data.queue(1)?.read_at(region.slice_all()?, 0)?;
/// let (n, _) = copy.queue(1)?.write_at(s, 0)?;        // the same region on the other device
/// assert_eq!(n, 4096);
/// assert_eq!(region.domain_id(), copy.domain().id());
/// # drop((data, copy)); std::fs::remove_file(&a).ok(); std::fs::remove_file(&b).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::Domain;

/// A domain's process-wide identity.
///
/// # Example
///
/// ```
/// use pinio::Device;
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-domainid", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(4096).open()?;
/// let region = dev.alloc(4096)?;
/// assert_eq!(region.domain_id(), dev.domain().id()); // a region belongs to one domain
/// # drop((region, dev)); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::DomainId;

/// How a backend identifies one registration, and where devices see it.
///
/// # Example
///
/// ```
/// use pinio::{Device, Registration};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-key", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(4096).open()?;
/// let key = dev.alloc(4096)?.key();
/// // The copy backend pins nothing: its regions are not registered anywhere.
/// assert_eq!((key.registration, key.is_registered(), key.handle()), (Registration::None, false, None));
/// # drop(dev); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::RegionKey;

/// How a backend holds one registration.
///
/// # Example
///
/// ```
/// use pinio::Registration;
/// fn describe(r: Registration) -> String {
///     match r {
///         Registration::Own(h) => format!("registration {h}, released with its region"),
///         Registration::Piece(h) => format!("a piece of registration {h} (an arena)"),
///         Registration::None => "not registered".into(),
///     }
/// }
/// assert_eq!(describe(Registration::Piece(3)), "a piece of registration 3 (an arena)");
/// ```
#[doc(inline)]
pub use pinio_core::Registration;

/// A backend's registration mechanism (for backend authors): what a
/// [`Domain`] calls to register and release memory.
///
/// # Example
///
/// ```
/// use pinio::{DmaBuf, Domain, RegionKey, Registrar, Registration};
/// /// Registers nothing and hands out the buffer's own address.
/// struct Plain;
/// // SAFETY: nothing is registered and no device reaches the memory; slices are
/// // only touched by the CPU of the thread that holds them.
/// unsafe impl Registrar for Plain {
///     fn backend(&self) -> &'static str { "plain" }
///     fn register(&self, buf: &mut DmaBuf) -> pinio::Result<RegionKey> {
///         Ok(RegionKey { registration: Registration::None, device_addr: buf.as_ptr() as u64 })
///     }
///     fn unregister(&self, _: RegionKey, _: &DmaBuf) -> pinio::Result<()> { Ok(()) }
///     fn describe(&self) -> String { "plain memory".into() }
/// }
/// let domain = Domain::new(Plain);
/// let region = domain.alloc(4096)?;
/// assert_eq!(domain.backend(), "plain");
/// assert_eq!(region.key().device_addr, region.as_ptr() as u64);
/// assert!(domain.registrar::<Plain>().is_some());
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::Registrar;

/// Everything that can go wrong, each variant naming the values involved
/// and what to do.
///
/// # Example
///
/// ```
/// use pinio::{Device, Error, Queue};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-error", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(4096).open()?;
/// let region = dev.alloc(8192)?;
/// let mut q = dev.queue(1)?;
/// // A write past the end of the file is refused, and the slice comes back.
/// let err = q.write_at(region.slice(0, 4096)?, 8192).unwrap_err();
/// assert!(matches!(err.error, Error::OutOfBounds { .. }), "{}", err.error);
/// assert_eq!(err.into_slices().len(), 1);
/// assert!(matches!(pinio::open("nosuch:/x"), Err(Error::InvalidTarget { .. })));
/// # drop((q, dev)); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::Error;

/// A refused registration, with the buffer handed back.
///
/// # Example
///
/// ```
/// use pinio::{Device, DmaBuf};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-registererror", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(4096).open()?;
/// let mut buf = DmaBuf::new(4096)?;
/// buf[0] = 42;
/// match dev.register(buf) {
///     Ok(region) => assert_eq!(region.len(), 4096),
///     Err(refused) => {
///         // Nothing is lost: the buffer comes back with the reason.
///         assert_eq!(refused.buf[0], 42);
///         eprintln!("not registered: {}", refused.error);
///     }
/// }
/// # drop(dev); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::RegisterError;

/// `std::result::Result` with pinio's [`Error`].
///
/// # Example
///
/// ```
/// fn first_byte(spec: &str) -> pinio::Result<u8> {
///     use pinio::{Device, Queue};
///     let dev = pinio::open(spec)?;
///     let region = dev.alloc(4096)?;
///     let (_, s) = dev.queue(1)?.read_at(region.slice(0, 4096)?, 0)?;
///     Ok(s[0])
/// }
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-result", std::process::id()));
/// # std::fs::write(&path, [9u8; 4096]).unwrap();
/// assert_eq!(first_byte(&format!("copy:{}", path.display()))?, 9);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::Result;

/// An operation's completion: the slice back, and the bytes moved or why not.
///
/// # Example
///
/// ```
/// use pinio::{Device, Op, Queue};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-completion2", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(8192).open()?;
/// let region = dev.alloc(8192)?;
/// let mut q = dev.queue(2)?;
/// q.push(Op::read(region.slice(0, 4096)?, 0, 1)).map_err(|r| r.error)?;
/// q.push(Op::read(region.slice(4096, 4096)?, 4096, 2)).map_err(|r| r.error)?;
/// q.submit()?;
/// let mut done = Vec::new();
/// while done.len() < 2 {
///     q.wait(1, &mut done)?;
/// }
/// for c in &done {
///     assert_eq!(*c.result.as_ref().unwrap(), 4096);
///     assert_eq!(c.dev_offset, (c.tag - 1) * 4096);
/// }
/// # drop((done, q, dev)); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::Completion;

/// Which way an operation moves bytes.
///
/// # Example
///
/// ```
/// use pinio::{Direction, Op};
/// let domain = pinio::Domain::new(pinio::copy::CopyRegistrar);
/// let region = domain.alloc(4096)?;
/// let op = Op::new(Direction::Write, region.slice_all()?, 0, 7);
/// assert_eq!((op.dir, op.len()), (Direction::Write, 4096));
/// assert_eq!(Direction::Write.to_string(), "write (memory to device)");
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::Direction;

/// One operation: a slice (or several), a device offset, a tag.
///
/// # Example
///
/// ```
/// use pinio::Op;
/// let domain = pinio::Domain::new(pinio::copy::CopyRegistrar);
/// let region = domain.alloc(8192)?;
/// let op = Op::writev(vec![region.slice(0, 4096)?, region.slice(4096, 4096)?], 0, 1)?;
/// assert!(op.is_vectored());
/// assert_eq!((op.segment_count(), op.len()), (2, 8192));
/// let slices = op.into_slices(); // an op never pushed gives its slices back
/// assert_eq!(slices.len(), 2);
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::Op;

/// The further slices of a vectored operation or completion (`rest`), kept
/// out of line behind one pointer, null for a one-slice operation.
///
/// # Example
///
/// ```
/// use pinio::{Op, SliceTail};
/// let domain = pinio::Domain::new(pinio::copy::CopyRegistrar);
/// let region = domain.alloc(12288)?;
/// let one = Op::read(region.slice(0, 4096)?, 0, 1);
/// assert!(one.rest.is_empty()); // no allocation for the common case
/// let v = Op::readv(vec![region.slice(4096, 4096)?, region.slice(8192, 4096)?], 0, 2)?;
/// assert_eq!(v.rest.len(), 1); // reads as a [Slice]
/// let tail: Vec<pinio::Slice> = SliceTail::into_vec(v.rest);
/// assert_eq!(tail[0].offset(), 8192);
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::SliceTail;

/// Fixed-size slices of one region, taken and given back from any thread.
///
/// # Example
///
/// ```
/// use pinio::{Device, Queue, SlicePool};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-pool", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(1 << 20).open()?;
/// let pool = SlicePool::new(dev.alloc(64 * 1024)?, 4096)?;  // 16 slices of one registration
/// let mut q = dev.queue(1)?;
/// let s = pool.take().expect("a free slice");
/// let (_, s) = q.read_at(s, 0)?;
/// assert_eq!(pool.available(), pool.capacity() - 1);
/// pool.give(s).expect("the slice is this pool's");
/// assert_eq!(pool.available(), 16);
/// # drop((q, pool, dev)); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::SlicePool;

/// The future of [`SlicePool::take_async`].
///
/// # Example
///
/// ```
/// use pinio::SlicePool;
/// let domain = pinio::Domain::new(pinio::copy::CopyRegistrar);
/// let pool = SlicePool::new(domain.alloc(8192)?, 4096)?;
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let slice = rt.block_on(pool.take_async()); // waits until a slice is free (any runtime)
/// assert_eq!(slice.len(), 4096);
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::TakeSlice;

/// What a flush makes durable.
///
/// # Example
///
/// ```
/// use pinio::{Device, FlushMode, Queue};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-flush", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(4096).open()?;
/// let region = dev.alloc(4096)?;
/// let mut q = dev.queue(1)?;
/// let (_, _s) = q.write_at(region.slice_all()?, 0)?;
/// q.flush(FlushMode::Data)?; // fdatasync: the data, and what reading it back needs
/// q.flush(FlushMode::All)?;  // fsync: every metadata change too
/// # drop((q, dev)); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::FlushMode;

/// How a flush started without waiting ([`Queue::start_flush`]) is going.
///
/// # Example
///
/// ```
/// # #[cfg(feature = "uring")] { // the example needs the uring backend
/// use pinio::{Device, FlushMode, FlushProgress, Queue};
/// # let path = std::path::PathBuf::from(format!("/var/tmp/pinio-doc-{}-flush-progress", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("uring:{}", path.display()))?.create(1 << 20).open()?;
/// let region = dev.alloc(4096)?;
/// let mut q = dev.queue(4)?;
/// let (_, _s) = q.write_at(region.slice_all()?, 0)?;
/// // An event loop starts the flush and goes on with other work...
/// let mut progress = q.start_flush(FlushMode::Data)?;
/// while progress == FlushProgress::Running {
///     progress = q.poll_flush()?; // ...looking again when the completion fd signals
/// }
/// # drop((q, dev)); std::fs::remove_file(&path).ok();
/// # }
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::FlushProgress;

/// A failed operation, with its slices handed back.
///
/// # Example
///
/// ```
/// use pinio::{Device, Queue};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-operror", std::process::id()));
/// # std::fs::write(&path, [0u8; 4096]).unwrap();
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.writable(false).open()?;
/// let region = dev.alloc(4096)?;
/// let mut q = dev.queue(1)?;
/// let failed = q.write_at(region.slice_all()?, 0).unwrap_err(); // read-only device
/// assert!(matches!(failed.error, pinio::Error::ReadOnly));
/// let slice = failed.slice.expect("the slice comes back");
/// assert_eq!(slice.len(), 4096);
/// # drop((slice, q, dev)); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::OpError;

/// A submission/completion pair owned by one thread.
///
/// # Example
///
/// ```
/// use pinio::{Device, Op, Queue};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-queue", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(1 << 20).open()?;
/// let region = dev.alloc(64 * 1024)?;
/// let mut q = dev.queue(16)?;
/// // Sixteen reads in flight at once, pushed as one batch, then collect them.
/// let mut ops = Vec::new();
/// for i in 0..16 {
///     ops.push(Op::read(region.slice(i * 4096, 4096)?, (i * 4096) as u64, i as u64));
/// }
/// assert_eq!(q.push_batch(&mut ops.into_iter()).map_err(|r| r.error)?, 16);
/// q.submit()?;
/// let mut done = Vec::new();
/// while done.len() < 16 {
///     q.wait(1, &mut done)?;
/// }
/// assert_eq!(q.in_flight(), 0);
/// assert!(done.iter().all(|c| c.result.as_ref().is_ok_and(|&n| n == 4096)));
/// # drop((done, q, dev)); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::Queue;

/// An operation a queue refused at push, handed back unchanged.
///
/// # Example
///
/// ```
/// use pinio::{Device, Op, Queue};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-rejected", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(8192).open()?;
/// let region = dev.alloc(8192)?;
/// let mut q = dev.queue(1)?;
/// q.push(Op::read(region.slice(0, 4096)?, 0, 1)).map_err(|r| r.error)?;
/// // The queue holds one operation: a second is refused, and comes back whole.
/// let rejected = q.push(Op::read(region.slice(4096, 4096)?, 4096, 2)).unwrap_err();
/// assert!(matches!(rejected.error, pinio::Error::QueueFull { .. }), "{}", rejected.error);
/// assert_eq!(rejected.op.tag, 2);
/// # q.submit()?; let mut v = Vec::new(); q.wait(1, &mut v)?;
/// # drop((rejected, v, q, dev)); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::Rejected;

/// A [`DmaBuf`] registered in a domain; slices of it go to devices.
///
/// # Example
///
/// ```
/// use pinio::{Device, Queue};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-region", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(8192).open()?;
/// let region = dev.alloc(8192)?;
/// let (a, b) = (region.slice(0, 4096)?, region.slice(4096, 4096)?); // disjoint: both may live
/// assert!(region.slice(0, 8192).is_err());                           // overlaps a live slice
/// assert_eq!(region.live_slices(), 2);
/// drop((a, b));
/// let buf = region.unregister().expect("no slices left"); // explicit release, buffer back
/// assert_eq!(buf.len(), 8192);
/// # drop(dev); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::Region;

/// Why [`Region::unregister`] did not release a region.
///
/// # Example
///
/// ```
/// use pinio::UnregisterError;
/// let domain = pinio::Domain::new(pinio::copy::CopyRegistrar);
/// let region = domain.alloc(4096)?;
/// let slice = region.slice_all()?;
/// match region.unregister() {
///     Err(UnregisterError::Busy { region, outstanding }) => {
///         assert_eq!(outstanding, 1); // the live slice keeps it registered
///         drop(slice);
///         region.unregister().expect("free now");
///     }
///     other => panic!("expected Busy, got {other:?}"),
/// }
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::UnregisterError;

/// `(region, offset, len)`: the unit handed to a device, owning its bytes.
///
/// # Example
///
/// ```
/// let domain = pinio::Domain::new(pinio::copy::CopyRegistrar);
/// let region = domain.alloc(8192)?;
/// let mut s = region.slice(0, 8192)?;
/// s[..5].copy_from_slice(b"hello");                // a slice is `&mut [u8]` while held
/// let (head, tail) = s.split_at(4096).expect("in range");
/// assert_eq!((head.offset(), tail.offset(), &head[..5]), (0, 4096, &b"hello"[..]));
/// let whole = head.merge(tail).expect("neighbours merge");
/// assert_eq!(whole.len(), 8192);
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::Slice;

/// The counters of a device or domain, updated lock-free (for backend authors).
///
/// # Example
///
/// ```
/// let stats = pinio::Stats::default();
/// stats.pinned(4096);
/// stats.read(4096);
/// stats.copied(4096);
/// let s = stats.snapshot();
/// assert_eq!((s.pins, s.bytes_pinned, s.bytes_read, s.bytes_copied), (1, 4096, 4096, 4096));
/// ```
#[doc(inline)]
pub use pinio_core::Stats;

/// The counters at one moment: pins, operations, bytes moved and the bytes
/// the CPU copied.
///
/// # Example
///
/// ```
/// use pinio::{Device, Queue};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-snapshot", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(4096).open()?;
/// let region = dev.alloc(4096)?;
/// let before = dev.stats();
/// let (_, _s) = dev.queue(1)?.read_at(region.slice_all()?, 0)?;
/// let delta = dev.stats().since(&before);
/// assert_eq!((delta.ops, delta.bytes_read), (1, 4096));
/// assert!(delta.bytes_copied >= 4096); // the copy backend copies; zero-copy ones report 0
/// println!("{delta}");
/// # drop(dev); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::StatsSnapshot;

/// Alignment helpers: round to, and test for, a power-of-two alignment.
///
/// # Example
///
/// ```
/// assert_eq!(pinio::align_up(5000, 4096), Some(8192));
/// assert_eq!(pinio::align_down(5000, 4096), 4096);
/// assert!(pinio::is_aligned(8192, 4096));
/// assert!(pinio::page_size() >= 4096);
/// ```
#[doc(inline)]
pub use pinio_core::{align_down, align_up, is_aligned, page_size};

/// async/await over any [`Queue`].
///
/// # Example
///
/// ```
/// use pinio::{Device, aio::AsyncQueue};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-aio", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("copy:{}", path.display()))?.create(4096).open()?;
/// let region = dev.alloc(4096)?;
/// let q = AsyncQueue::new(dev.queue(4)?)?;
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap(); // or any executor
/// let (n, _slice) = rt.block_on(q.read_at(region.slice_all()?, 0))?;
/// assert_eq!(n, 4096);
/// # drop((q, dev)); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_core::aio;

/// Registration domains and the DMA ownership rule.
#[doc(inline)]
pub use pinio_core::domain;
