//! Other platforms' non-OAuth-2.1 wire formats, each behind its own setting and off by default.
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

pub mod azure_devops;

use crate::config::Config;
use crate::context::{Core, Profile};
use crate::store::Driver;

/// The profile a request is served under, from the settings (read per
/// request: tests change `Server::config` after `Server::new`).
pub fn select<'c, D: Driver + 'c>(config: &'c Config) -> &'c dyn Profile<D> {
    if config.azure_devops_compat {
        &azure_devops::AzureDevOps
    } else {
        &Core
    }
}
