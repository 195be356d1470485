//! GitHub: the events rotor is started by, the REST API it reads approvals from and reports
//! to, and the GraphQL API that makes and signs its commits (`commit.via: api`).

mod client;
pub mod commit;
pub mod event;
pub mod model;
pub mod oidc;

pub use client::{GitHub, GitHubError, RepoName};
