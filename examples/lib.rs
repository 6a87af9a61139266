//! Examples of pinio; see `echo.rs`, `append_log.rs` and `mirror.rs` beside this file,
//! and each backend crate's own `examples/`.
