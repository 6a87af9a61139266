//! Examples of pinio; see `echo.rs` and `append_log.rs` beside this file,
//! and each backend crate's own `examples/`.
