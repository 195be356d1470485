//! Integration tests: drive the `rotor` binary, and the library where a process adds nothing.

mod action;
mod app;
mod apply;
mod backend_aws;
mod backend_vault;
mod checkout;
mod common;
mod corpus;
mod crash;
mod events;
mod faults;
mod gitops;
mod no_panic;
mod plan;
mod races;
mod refs;
mod report;
mod resume;
mod rollback;
mod rotation;
mod schema;
mod services;
mod status;
mod validate;
