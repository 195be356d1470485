//! The record read back: the artifacts on the default branch as a ledger of each ref's
//! rotations (`drift`, `report`), their history in git, its verification (`verify`) and the
//! auditors' document built on it (`evidence`).

pub mod evidence;
pub mod glass;
pub mod history;
pub mod ledger;
pub(crate) mod signing;
pub mod verify;
