//! Everything read from, or done to, the dpkg side of the system.

pub mod control;
pub mod deb;
pub mod info;
pub mod lock;
pub mod log;
pub mod status;
pub mod triggers;
pub mod version;

/// Package names are `[a-z0-9][a-z0-9+.-]+` (deb-control(5)). Checked wherever a name comes
/// from a person or a file and may become part of a path or a message.
pub fn valid_package_name(name: &str) -> bool {
    name.len() >= 2
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b))
}
