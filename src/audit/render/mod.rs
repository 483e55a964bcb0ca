//! The output formats of one [`Report`](super::report::Report).

pub(crate) mod json;
pub(crate) mod nagios;
pub(crate) mod npd;
pub(crate) mod prometheus;
pub(crate) mod text;
