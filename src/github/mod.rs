//! GitHub: the events rotor is started by, and the REST API it reads approvals from and
//! reports to.

mod client;
pub mod event;
pub mod model;
pub mod oidc;

pub use client::{GitHub, GitHubError, RepoName};
