//! The PostgreSQL journal over TLS with two roles, against a real server this test starts:
//! libpq's `sslmode` as rustls honours it, the station role's missing privileges (no DDL, no
//! TRUNCATE, an append-only audit log), the schema made by the administrator only, and no
//! personal data in the logs at `RUST_LOG=trace`.
//!
//! Journal-only tests need no pcscd; the log test runs `perso run` on a reader, so run this
//! file under `flock -o /tmp/sscard-pcscd.lock` like the other e2e tests.

use sscard_core::profile::holder::Holder;
use sscard_e2e::*;
use sscard_perso::journal::{Journal, JournalError, PgError};
use sscard_perso::state::State;

/// A holder whose birth date and gender agree with the ID number, so that every validation
/// accepts it.
fn holder(i: usize, name: &str) -> Holder {
    let first17 = format!("1101051985{:02}{:02}{:03}", 1 + i % 9, 10 + i, 100 + i);
    let ssn = format!(
        "{first17}{}",
        sscard_core::profile::citizen_id_check(&first17).unwrap()
    );
    let check = {
        let s = format!("P{i:07}");
        let w = [3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = s
            .chars()
            .zip(w)
            .map(|(c, w)| c.to_digit(36).unwrap() * w)
            .sum();
        match 11 - sum % 11 {
            10 => 'X',
            11 => '0',
            r => char::from_digit(r, 10).unwrap(),
        }
    };
    let odd = (first17.as_bytes()[16] - b'0') % 2 == 1;
    Holder {
        card_number: format!("P{i:07}{check}"),
        birth_date: first17[6..14].to_string(),
        ssn,
        name: name.into(),
        gender: if odd { "1" } else { "2" }.into(),
        ..Holder::sample()
    }
}

const NAMES: [&str; 3] = ["欧阳娜娜", "司马相如", "诸葛孔明"];

fn holders() -> Vec<(usize, Holder)> {
    NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (i + 2, holder(i + 1, n)))
        .collect()
}

fn message(e: &JournalError) -> String {
    e.to_string()
}

#[test]
fn a_station_connects_with_verify_full_and_its_ca_over_tls() {
    let pg = Postgres::start();
    let url = pg.url("journal_tls");
    let mut j = audited(&url);
    assert_eq!(j.add("batch.csv", &holders()).unwrap(), 3);
    assert_eq!(j.counts().unwrap(), vec![(State::Pending, 3)]);
    // The station's connection, seen from the server: TLS 1.3.
    assert_eq!(
        pg.psql(
            &pg.admin_url("journal_tls"),
            "SELECT a.usename, s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'station'"
        ),
        Ok("station|t|TLSv1.3".into())
    );
    drop(j);
    // The password may come from PGPASSWORD rather than the URL (and the command line), as
    // with libpq.
    let no_password = url.replace(&format!(":{STATION_PASSWORD}@"), "@");
    let o = sscard_env(
        &["perso", "status", "--journal", &no_password, "--json"],
        &[("PGPASSWORD", STATION_PASSWORD)],
        None,
    );
    assert_eq!(
        json(&o)["states"],
        serde_json::json!({ "pending": 3 }),
        "{}",
        stderr(&o)
    );
    let o = sscard_env(&["perso", "status", "--journal", &no_password], &[], None);
    assert!(!o.status.success());
    assert!(
        stderr(&o).starts_with("sscard: error: journal: invalid configuration: password missing"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn verify_full_with_another_ca_is_refused() {
    let pg = Postgres::start();
    pg.url("journal_other_ca");
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.station_base("journal_other_ca"),
        pg.other_ca().display()
    );
    let e = Journal::open(&url).err().expect("another CA is refused");
    assert!(matches!(e, JournalError::Postgres(_)), "{e:?}");
    assert_eq!(
        message(&e),
        "journal: error performing TLS handshake: invalid peer certificate: UnknownIssuer"
    );
    // verify-ca checks the chain just the same.
    let url = url.replace("verify-full", "verify-ca");
    assert_eq!(
        message(&Journal::open(&url).err().expect("refused")),
        "journal: error performing TLS handshake: invalid peer certificate: UnknownIssuer"
    );
}

#[test]
fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let pg = Postgres::start();
    pg.url("journal_names");
    // 127.0.0.2 reaches the same server, but its certificate names localhost and 127.0.0.1.
    let other_host = |mode: &str| {
        format!(
            "postgres://{STATION_ROLE}:{STATION_PASSWORD}@127.0.0.2:{}/journal_names?sslmode={mode}&sslrootcert={}",
            pg.port(),
            pg.ca().display()
        )
    };
    let e = Journal::open(&other_host("verify-full"))
        .err()
        .expect("a host the certificate does not name is refused");
    assert!(
        message(&e).starts_with("journal: error performing TLS handshake: invalid peer certificate: certificate not valid for name \"127.0.0.2\""),
        "{e}"
    );
    let mut j = Journal::open(&other_host("verify-ca")).unwrap();
    assert_eq!(j.counts().unwrap(), vec![]);
    // The name localhost is in the certificate.
    let localhost = pg
        .station_url("journal_names")
        .replace("@127.0.0.1:", "@localhost:");
    Journal::open(&localhost).unwrap();
}

#[test]
fn require_encrypts_without_a_ca_and_prefer_takes_tls_when_offered() {
    let pg = Postgres::start();
    pg.url("journal_modes");
    for mode in ["require", "prefer", "allow"] {
        let url = format!("{}?sslmode={mode}", pg.station_base("journal_modes"));
        // The station role is refused in clear text: connecting at all proves TLS.
        Journal::open(&url).unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
    }
    // No sslmode is libpq's prefer.
    Journal::open(&pg.station_base("journal_modes")).unwrap();
}

#[test]
fn the_station_role_is_refused_in_clear_text() {
    let pg = Postgres::start();
    pg.url("journal_clear");
    let e = Journal::open(&pg.clear_station_url("journal_clear"))
        .err()
        .expect("clear text is refused");
    assert_eq!(
        message(&e),
        "journal: pg_hba.conf rejects connection for host \"127.0.0.1\", user \"station\", database \"journal_clear\", no encryption (28000)"
    );
}

#[test]
fn require_fails_against_a_server_without_tls_and_prefer_falls_back_to_clear_text() {
    let pg = Postgres::start_without_tls();
    pg.create_db("journal_notls");
    let clear = pg.admin_url("journal_notls");
    Journal::init(&clear, None).unwrap();
    let url = |mode: &str| {
        format!(
            "{}&sslrootcert={}",
            clear.replace("sslmode=disable", &format!("sslmode={mode}")),
            pg.ca().display()
        )
    };
    for mode in ["require", "verify-ca", "verify-full"] {
        let e = Journal::open(&url(mode))
            .err()
            .expect("no TLS, no connection");
        assert_eq!(
            message(&e),
            "journal: error performing TLS handshake: server does not support TLS",
            "{mode}"
        );
    }
    let mut j = Journal::open(&url("prefer")).unwrap();
    assert_eq!(j.counts().unwrap(), vec![]);
    // The administrator's connection in clear text, seen from the server.
    assert_eq!(
        pg.psql(
            &clear,
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'postgres' AND NOT s.ssl"
        ),
        Ok("2".into())
    );
}

/// The station role may read, add and update rows and append to the audit log — nothing else.
#[test]
fn the_station_role_cannot_truncate_drop_or_rewrite_the_audit_log() {
    let pg = Postgres::start();
    let station = pg.url("journal_roles");
    let admin = pg.admin_url("journal_roles");
    let mut j = audited(&station);
    j.add("batch.csv", &holders()).unwrap();
    j.audit("batch", "3 holders").unwrap();
    j.audit("issued", "card 1").unwrap();
    drop(j);
    let denied = |table: &str| Err(format!("42501: permission denied for table {table}"));
    assert_eq!(pg.psql(&station, "TRUNCATE audit"), denied("audit"));
    assert_eq!(pg.psql(&station, "TRUNCATE holders"), denied("holders"));
    assert_eq!(
        pg.psql(&station, "UPDATE audit SET detail = 'nothing happened'"),
        denied("audit")
    );
    assert_eq!(
        pg.psql(&station, "DELETE FROM audit WHERE seq = 2"),
        denied("audit")
    );
    assert_eq!(pg.psql(&station, "DELETE FROM holders"), denied("holders"));
    assert_eq!(
        pg.psql(&station, "DROP TABLE audit"),
        Err("42501: must be owner of table audit".into())
    );
    assert_eq!(
        pg.psql(&station, "ALTER TABLE holders ADD COLUMN x int"),
        Err("42501: must be owner of table holders".into())
    );
    assert_eq!(
        pg.psql(&station, "CREATE TABLE audit2 (x int)"),
        Err("42501: permission denied for schema public".into())
    );
    assert_eq!(
        pg.psql(&station, "CREATE TEMPORARY TABLE t (x int)"),
        Err(
            "42501: permission denied to create temporary tables in database \"journal_roles\""
                .into()
        )
    );
    assert_eq!(
        pg.psql(&station, "CREATE SCHEMA mine"),
        Err("42501: permission denied for database journal_roles".into())
    );
    assert_eq!(
        pg.psql(
            &station,
            "ALTER TABLE audit DISABLE TRIGGER audit_append_only"
        ),
        Err("42501: must be owner of table audit".into())
    );
    // What a station does is allowed.
    assert_eq!(
        // One entry per holder added, the batch, and the two events.
        pg.psql(&station, "SELECT count(*) FROM audit"),
        Ok("6".into())
    );
    // Even the administrator cannot rewrite, delete or truncate the audit log.
    for sql in [
        "UPDATE audit SET detail = 'nothing happened'",
        "DELETE FROM audit",
        "TRUNCATE audit",
    ] {
        assert_eq!(
            pg.psql(&admin, sql),
            Err("P0001: the audit log is append-only".into()),
            "{sql}"
        );
    }
    assert_eq!(
        pg.psql(&admin, "SELECT count(*) FROM audit"),
        Ok("6".into())
    );
    // The station owns nothing.
    assert_eq!(
        pg.psql(
            &admin,
            "SELECT count(*) FROM pg_class WHERE relowner = 'station'::regrole"
        ),
        Ok("0".into())
    );
}

#[test]
fn a_station_cannot_open_or_create_a_journal_whose_schema_is_missing() {
    let pg = Postgres::start();
    pg.create_db("journal_empty");
    let station = pg.station_url("journal_empty");
    let e = Journal::open(&station)
        .err()
        .expect("no schema, no journal");
    match &e {
        JournalError::Pg(PgError::NoSchema { missing }) => {
            assert_eq!(missing, &["holders", "spoiled", "stations", "audit"])
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        message(&e),
        "journal: the schema lacks table(s) holders, spoiled, stations, audit: the database administrator creates it first: sscard perso journal-init --journal ADMIN-URL --station-role ROLE"
    );
    // Nor can the station make the schema itself.
    assert_eq!(
        message(&Journal::init(&station, None).expect_err("no DDL")),
        "journal: permission denied for schema public (42501)"
    );
    // Once the administrator has, it opens; running the admin step again changes nothing.
    let admin = pg.admin_url("journal_empty");
    Journal::init(&admin, Some(STATION_ROLE)).unwrap();
    Journal::init(&admin, Some(STATION_ROLE)).unwrap();
    Journal::open(&station).unwrap();
}

#[test]
fn the_admin_step_refuses_a_station_role_that_could_do_more() {
    let pg = Postgres::start();
    pg.create_db("journal_strong");
    let admin = pg.admin_url("journal_strong");
    let refused = |role: &str| Journal::init(&admin, Some(role)).expect_err("refused");
    assert!(matches!(
        refused("nobody"),
        JournalError::Pg(PgError::NoRole { role }) if role == "nobody"
    ));
    assert_eq!(
        message(&refused("postgres")),
        "journal: station role \"postgres\" is a superuser: a station's role must not be able to run DDL or TRUNCATE; use a plain LOGIN role"
    );
    pg.psql(&admin, "CREATE ROLE maker LOGIN CREATEROLE")
        .unwrap();
    assert_eq!(
        message(&refused("maker")),
        "journal: station role \"maker\" has CREATEROLE: a station's role must not be able to run DDL or TRUNCATE; use a plain LOGIN role"
    );
    pg.psql(
        &admin,
        "CREATE ROLE owner LOGIN; CREATE TABLE mine (x int); ALTER TABLE mine OWNER TO owner",
    )
    .unwrap();
    assert_eq!(
        message(&refused("owner")),
        "journal: station role \"owner\" owns relation mine: an owner can TRUNCATE and drop what it owns; as the administrator run REASSIGN OWNED BY owner TO <admin role> in this database, then the schema step again"
    );
}

/// `RUST_LOG=trace` turns on the driver's debug output, which holds every statement's
/// parameters — holder names and ID numbers, as `perso run` adds the batch. The CLI keeps the
/// drivers at info whatever RUST_LOG says.
#[test]
fn no_holder_data_in_the_logs_at_trace() {
    let _g = exclusive();
    ensure_pcscd();
    let pg = Postgres::start();
    let url = pg.url("journal_logs");
    let dir = std::env::temp_dir().join(format!("sscard-pg-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let batch = dir.join("batch.csv");
    let mut csv = "card_number,ssn,name,gender,nation,birthplace,birth_date,issue_date,expiry_date,pension,medical,medical_account\n".to_string();
    for (_, h) in holders() {
        csv += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            h.card_number,
            h.ssn,
            h.name,
            h.gender,
            h.nation,
            h.birthplace,
            h.birth_date,
            h.issue_date,
            h.expiry_date,
            h.pension,
            h.medical,
            h.medical_account
        );
    }
    std::fs::write(&batch, csv).unwrap();
    let anchor = batch.with_extension("anchor");
    // `trace`, and a directive naming the driver's query module (more specific than anything
    // the CLI could add to RUST_LOG). No card comes: the worker stops after a second; the
    // first run adds the batch, the second looks each holder up again.
    for rust_log in ["trace", "info,tokio_postgres::query=trace,postgres=trace"] {
        let env = [("RUST_LOG", rust_log)];
        let run = sscard_env(
            &[
                "perso",
                "run",
                "--operator",
                "tester",
                "--anchor",
                anchor.to_str().unwrap(),
                "--batch",
                batch.to_str().unwrap(),
                "--readers",
                "0",
                "--journal",
                &url,
                "--idle",
                "1",
            ],
            &env,
            None,
        );
        let status = sscard_env(
            &["perso", "status", "--journal", &url, "--json"],
            &env,
            None,
        );
        assert!(status.status.success(), "{}", stderr(&status));
        assert_eq!(
            json(&status)["states"],
            serde_json::json!({ "pending": 3 }),
            "perso run: {}",
            stderr(&run)
        );
        for (what, o) in [("perso run", &run), ("perso status", &status)] {
            let err = stderr(o);
            for (_, h) in holders() {
                for data in [&h.name, &h.ssn, &h.card_number] {
                    assert!(
                        !err.contains(data.as_str()),
                        "{what} at RUST_LOG={rust_log} logs {data}: {err}"
                    );
                }
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The journal of a station with the test key set's audit key.
fn audited(url: &str) -> Journal {
    Journal::open_audited(
        url,
        Box::new(sscard::keys::SoftKeys::test_set()),
        "station-1",
        "tester",
    )
    .unwrap()
}

/// The tamper matrix on PostgreSQL, done as the database's administrator, who can disable the
/// append-only triggers: each kind of change is caught by `audit_verify` (the keyed chain, the
/// holders checked against it, the anchor outside the database).
#[test]
fn the_administrator_cannot_doctor_the_audit_log_unseen() {
    use sscard_perso::state::Stage;
    let pg = Postgres::start();
    let station = pg.url("journal_tamper");
    let admin = pg.admin_url("journal_tamper");
    let dir = std::env::temp_dir().join(format!("sscard-pg-tamper-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let anchor = dir.join("journal.anchor");
    let mut j = audited(&station);
    j.add("batch.csv", &holders()).unwrap();
    for card in ["CARD1", "CARD2"] {
        let c = j.claim("r0", card).unwrap().unwrap();
        let mut at = Stage::Blank;
        while let Some(next) = at.next() {
            j.reached(c.id, at, next, "test").unwrap();
            at = next;
        }
    }
    j.anchor(&anchor).unwrap();
    let verified = j.audit_verify(&anchor).unwrap().unwrap();
    assert_eq!((verified.entries, verified.holders), (16, 3));
    let unlocked = |sql: &str| {
        pg.psql(
            &admin,
            &format!("ALTER TABLE audit DISABLE TRIGGER USER; {sql}; ALTER TABLE audit ENABLE TRIGGER USER"),
        )
        .unwrap();
    };
    let broken = |j: &mut sscard_perso::journal::Journal| {
        j.audit_verify(&anchor).unwrap().unwrap_err().to_string()
    };
    // The station's own role, which may UPDATE holders, swaps an issued holder's identity.
    pg.psql(
        &station,
        "UPDATE holders SET card_number = 'X' || card_number WHERE id = 1",
    )
    .unwrap();
    assert_eq!(
        broken(&mut j),
        "holder row 1's data is not what was added: the row was edited"
    );
    pg.psql(
        &station,
        "UPDATE holders SET card_number = substr(card_number, 2) WHERE id = 1",
    )
    .unwrap();
    assert!(j.audit_verify(&anchor).unwrap().is_ok());
    // An issued holder set back to pending.
    pg.psql(
        &admin,
        "UPDATE holders SET state = 'pending', card_id = NULL WHERE id = 1",
    )
    .unwrap();
    assert_eq!(
        broken(&mut j),
        "holder row 1 is pending in the journal, but the audit log last recorded issued on card CARD1: the row was edited"
    );
    pg.psql(
        &admin,
        "UPDATE holders SET state = 'issued', card_id = 'CARD1' WHERE id = 1",
    )
    .unwrap();
    assert!(j.audit_verify(&anchor).unwrap().is_ok());
    // An entry rewritten and its hash recomputed without the key.
    unlocked(
        "UPDATE audit SET detail = 'x', hash = encode(sha256(prev::bytea), 'hex') WHERE seq = 7",
    );
    assert_eq!(
        broken(&mut j),
        "entry 7 (keys_loaded) does not verify under the audit key: the log was changed"
    );
    // The newest entries deleted, and the rows made to agree with what is left.
    unlocked("DELETE FROM audit WHERE seq >= 7");
    pg.psql(&admin, "UPDATE holders SET state = 'pending', card_id = NULL, station = NULL, reader = NULL WHERE id = 2")
        .unwrap();
    pg.psql(
        &admin,
        "UPDATE holders SET state = 'authenticated' WHERE id = 1",
    )
    .unwrap();
    assert_eq!(
        broken(&mut j),
        "the anchor records 16 entries, the journal holds 6: entries were deleted"
    );
    // TRUNCATE.
    unlocked("TRUNCATE audit");
    pg.psql(
        &admin,
        "UPDATE holders SET state = 'pending', card_id = NULL, station = NULL, reader = NULL",
    )
    .unwrap();
    assert_eq!(
        broken(&mut j),
        "the anchor records 16 entries, the journal holds 0: entries were deleted"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
