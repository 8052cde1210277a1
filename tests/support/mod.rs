//! Helpers shared by the integration tests. Each test file that needs them declares
//! `mod support;` and uses what it needs, so items are `pub` for the files, not for a library.
#![allow(unreachable_pub)]

pub mod clock;
pub mod http;
pub mod redis;
pub mod stores;
pub mod tasks;
