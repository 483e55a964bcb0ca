//! The output formats of one [`Report`](super::report::Report).

pub mod json;
pub mod nagios;
pub mod npd;
pub mod prometheus;
pub mod text;
