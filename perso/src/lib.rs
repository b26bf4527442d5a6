//! The personalisation station: batches of holders, one blank card each, exactly once.
#![forbid(unsafe_code)]

pub mod batch;
pub mod card;
pub mod journal;
pub mod station;
