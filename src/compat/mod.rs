//! Other platforms' non-OAuth-2.1 wire formats, each behind its own setting and off by default.

pub mod azure_devops;
