//! The integration tests: one crate (one binary to link, like ripgrep's), a module per area.
//! Each module's own doc says what it proves; `support` holds the shared harness.
//!
//! Run one area with `cargo test --test it hook_dpkg::`.

#[path = "../support/mod.rs"]
mod support;

mod audit_cli;
mod audit_containers;
mod audit_debhelper;
mod audit_dpkg;
mod audit_npd;
mod audit_output;
mod dpkg_deb;
mod dpkg_log_fuzz;
mod dpkg_status;
mod dpkg_version;
mod engine_client;
mod faults_dirs;
mod hook_apt;
mod hook_containers;
mod hook_dpkg;
mod hook_lines;
mod package_config;
mod package_static;
mod package_units;
mod patch_apt;
mod patch_dpkg;
mod patch_kill;
mod patch_lock;
mod patch_size;
mod patch_xattr;
mod review_revert;
mod scripts_classify;
mod scripts_props;
mod scripts_real_debs;
mod support_selftest;
mod test_needs;
mod units_events;
mod units_health;
mod units_resolve;
mod units_service;
mod units_standin;
