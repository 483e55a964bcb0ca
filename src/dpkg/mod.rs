//! Everything read from, or done to, the dpkg side of the system.

pub mod control;
pub mod deb;
pub mod info;
pub mod lock;
pub mod log;
pub mod status;
pub mod version;
