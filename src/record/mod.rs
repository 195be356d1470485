//! The record read back: the artifacts on the default branch as a ledger of each ref's
//! rotations (`drift`, `report`).

pub mod ledger;
