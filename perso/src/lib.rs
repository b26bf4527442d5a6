//! `sscard-perso`: the personalisation station. Batches of holders ([`batch`]), the
//! exactly-once [`journal`] (SQLite by default, PostgreSQL with the `postgres` feature), the
//! typed state machine of one card ([`card`], whose states are the journal's [`state::Stage`]s),
//! and one worker per reader ([`station`]).
#![forbid(unsafe_code)]

pub mod batch;
pub mod card;
pub mod journal;
pub mod state;
pub mod station;
