//! What a channel (a [`crate::KmodDevice`]) shares with its queues.

use crate::channel::{Channel, Window};
use crate::session::Session;
use pinio_core::DeviceCore;
use std::sync::Arc;

/// One open channel: the device's common part, its session and its window of device memory.
/// The window stays claimed in the session until the device and all its queues are gone.
pub(crate) struct Shared {
    pub(crate) core: DeviceCore,
    pub(crate) session: Arc<Session>,
    pub(crate) channel: Channel,
    pub(crate) window: Window,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.session.release(self.window);
    }
}
