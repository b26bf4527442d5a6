//! keyd's own audit log, told apart from every journal a client keeps with `/v1/audit-mac`.
//!
//! keyd chains its log under the key source's audit key, the key `/v1/audit-mac` lends to
//! personalisation stations for their journals; both use the message formats of
//! `sscard_perso::journal` (`perso/src/journal/audit.rs`, `anchor.rs`): a tag, then each field
//! prefixed with its length as 8 bytes big-endian. keyd's entries name actor [`ACTOR`] and a
//! station beginning with [`STATION_PREFIX`], its anchor lines that station: `/v1/audit-mac`
//! refuses every message of those formats that names them ([`is_own_log_message`]), so no
//! client can obtain the MAC of an entry or anchor line of keyd's log. Verification is
//! unchanged: `sscard perso audit-verify` recomputes the same messages under the same key.

/// The actor of keyd's own entries.
pub const ACTOR: &str = "keyd";

/// The start of the station name keyd's log records (`keyd@` and `--station` or the host
/// name): reserved, a client's journal cannot have its entries MACed under such a station.
pub const STATION_PREFIX: &str = "keyd@";

/// The tag of an audit-chain entry's message (`perso/src/journal/audit.rs`, `Entry::message`).
pub const ENTRY_TAG: &[u8] = b"sscard audit v2";
/// Fields of an entry's message: prev, seq, at, station, actor, event, holder, state, card,
/// detail.
const ENTRY_FIELDS: usize = 10;

/// The tag of an anchor line's message (`perso/src/journal/anchor.rs`).
pub const ANCHOR_TAG: &[u8] = b"sscard anchor v1";
/// Fields of an anchor's message: at, station, count, head.
const ANCHOR_FIELDS: usize = 4;

/// The station name keyd's log records for `name`.
pub fn station(name: &str) -> String {
    format!("{STATION_PREFIX}{name}")
}

/// The fields of `message` if it is `tag` followed by length-prefixed fields and nothing else.
fn fields<'a>(message: &'a [u8], tag: &[u8]) -> Option<Vec<&'a [u8]>> {
    let mut rest = message.strip_prefix(tag)?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 8 {
            return None;
        }
        let (len, tail) = rest.split_at(8);
        let len = usize::try_from(u64::from_be_bytes(len.try_into().ok()?)).ok()?;
        if len > tail.len() {
            return None;
        }
        let (field, tail) = tail.split_at(len);
        out.push(field);
        rest = tail;
    }
    Some(out)
}

/// Whether `message` is one keyd MACs for its own log: an entry whose station is keyd's or
/// whose actor is [`ACTOR`], or an anchor of keyd's station. The parse is exact (the formats are
/// unambiguous), so every message keyd's log holds a MAC of is caught.
pub fn is_own_log_message(message: &[u8]) -> bool {
    let reserved_station = |s: &[u8]| s.starts_with(STATION_PREFIX.as_bytes());
    if let Some(f) = fields(message, ENTRY_TAG) {
        return f.len() == ENTRY_FIELDS && (reserved_station(f[3]) || f[4] == ACTOR.as_bytes());
    }
    if let Some(f) = fields(message, ANCHOR_TAG) {
        return f.len() == ANCHOR_FIELDS && reserved_station(f[1]);
    }
    false
}

/// Whether `message` is an entry chained onto an open hash of keyd's log (whoever it names):
/// it would extend keyd's log past its last anchor (`open_hashes`).
pub fn chains_onto(message: &[u8], open: &crate::open_hashes::OpenHashes) -> bool {
    fields(message, ENTRY_TAG).is_some_and(|f| f.len() == ENTRY_FIELDS && open.contains(f[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As `perso/src/journal/audit.rs` builds it.
    fn message(tag: &[u8], parts: &[&str]) -> Vec<u8> {
        let mut m = tag.to_vec();
        for p in parts {
            m.extend_from_slice(&(p.len() as u64).to_be_bytes());
            m.extend_from_slice(p.as_bytes());
        }
        m
    }

    fn entry(station: &str, actor: &str) -> Vec<u8> {
        message(
            ENTRY_TAG,
            &[
                "00",
                "7",
                "2026-12-02 21:00:00",
                station,
                actor,
                "keyd cryptogram",
                "",
                "",
                "",
                "client=x",
            ],
        )
    }

    #[test]
    fn keyd_entries_and_anchors_are_own_messages_station_ones_are_not() {
        assert!(is_own_log_message(&entry("keyd@host", "keyd")));
        assert!(is_own_log_message(&entry("host", "keyd")));
        assert!(is_own_log_message(&entry("keyd@host", "operator")));
        assert!(!is_own_log_message(&entry("host", "operator")));
        assert!(!is_own_log_message(&entry("host", "keyd-operator")));
        let anchor = |station| message(ANCHOR_TAG, &["2026-12-02", station, "12", "ab"]);
        assert!(is_own_log_message(&anchor("keyd@host")));
        assert!(!is_own_log_message(&anchor("host")));
        // A holder digest, a probe, a truncated or padded entry: not entries of keyd's log
        // (the verifier never MACs them as such).
        assert!(!is_own_log_message(&message(
            b"sscard holder v1",
            &["1", "keyd@host", "keyd"]
        )));
        assert!(!is_own_log_message(b"keyd audit key probe"));
        let whole = entry("keyd@host", "keyd");
        assert!(!is_own_log_message(&whole[..whole.len() - 1]));
        let mut padded = whole.clone();
        padded.push(0);
        assert!(!is_own_log_message(&padded));
        assert_eq!(station("plant-2"), "keyd@plant-2");
    }
}
