//! The PostgreSQL journal, for several stations sharing one journal: a claim takes the next
//! pending row with `FOR UPDATE SKIP LOCKED`, so stations never wait for, or take, each
//! other's rows.
//!
//! Two roles: an administrator creates the schema once ([`PgDb::create_schema`]) and grants the
//! stations' role only what a station needs — read, add and update rows, append to the audit
//! log — so a station cannot run DDL, `TRUNCATE`, or change or delete audit entries. A station
//! ([`PgDb::open`]) only checks that the schema is there.
//!
//! The connection speaks TLS through rustls, with libpq's `sslmode` and `sslrootcert` (which
//! tokio-postgres does not read in full): parsed and taken out of the URL here.

use super::db::{tables, Cell, ColumnTypes, Db, Intent, Param};
use super::JournalError;
use postgres::config::SslMode;
use postgres::types::{ToSql, Type};
use postgres::{Client, Config, NoTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a PostgreSQL journal was refused before any of its statements ran: the URL's TLS
/// parameters, a schema the administrator has not created, or a station role that could do
/// more than a station may.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    #[error("journal URL: sslmode={0:?} is not one of disable, allow, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    #[error("journal URL: {0} is given more than once")]
    Repeated(&'static str),
    #[error("journal URL: the value of {0} has a bad %-escape")]
    Escape(&'static str),
    #[error("journal URL: sslrootcert=system (the system's CA store) is not supported: name the CA file, sslrootcert=FILE")]
    SystemRoots,
    #[error("journal URL: sslmode={mode} checks the server's certificate against a CA: give sslrootcert=FILE (or put the CA in ~/.postgresql/root.crt)")]
    NoRootCert { mode: &'static str },
    #[error("journal URL: sslrootcert {path}: {reason}")]
    RootCert { path: PathBuf, reason: String },
    #[error("journal: TLS set-up: {0}")]
    Tls(rustls::Error),
    #[error("journal: the schema lacks table(s) {}: the database administrator creates it first: sscard perso journal-init --journal ADMIN-URL --station-role ROLE", missing.join(", "))]
    NoSchema { missing: Vec<String> },
    #[error("journal: station role {role:?} does not exist: create it first (CREATE ROLE … LOGIN PASSWORD …), then run the schema step again")]
    NoRole { role: String },
    #[error("journal: station role {role:?} {why}: a station's role must not be able to run DDL or TRUNCATE; use a plain LOGIN role")]
    RoleTooStrong { role: String, why: String },
    #[error("journal: station role {role:?} owns {}: an owner can TRUNCATE and drop what it owns; as the administrator run REASSIGN OWNED BY {role} TO <admin role> in this database, then the schema step again", owned.join(", "))]
    RoleOwns { role: String, owned: Vec<String> },
}

impl PgError {
    /// Whether the URL itself is wrong (the operator's input), as opposed to the database.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::SslMode(_)
                | Self::Repeated(_)
                | Self::Escape(_)
                | Self::SystemRoots
                | Self::NoRootCert { .. }
                | Self::RootCert { .. }
        )
    }
}

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsMode {
    /// Clear text only.
    Disable,
    /// libpq tries clear text first, then TLS; tokio-postgres cannot, so TLS first (as
    /// `prefer`): it connects to the same servers, over TLS where it can.
    Allow,
    /// TLS when the server offers it, else clear text (the default).
    Prefer,
    /// TLS or fail; the certificate is checked only when a CA file is given or present.
    Require,
    /// TLS with the server's certificate chain checked against the CA.
    VerifyCa,
    /// TLS with the chain and the host name checked.
    VerifyFull,
}

impl TlsMode {
    fn parse(s: &str) -> Result<Self, PgError> {
        Ok(match s {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => return Err(PgError::SslMode(other.into())),
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// A journal URL with libpq's TLS parameters taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PgUrl {
    /// The URL without `sslmode` and `sslrootcert`, for tokio-postgres.
    pub rest: String,
    pub mode: TlsMode,
    pub root_cert: Option<PathBuf>,
}

impl PgUrl {
    /// Splits `sslmode` and `sslrootcert` off the query of `postgres://…?…`; every other
    /// parameter is left, as written, to tokio-postgres.
    pub(crate) fn parse(url: &str) -> Result<Self, PgError> {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        let (mut mode, mut root_cert) = (None, None);
        let mut kept = Vec::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => {
                    if mode.is_some() {
                        return Err(PgError::Repeated("sslmode"));
                    }
                    let v = percent_decode(value).ok_or(PgError::Escape("sslmode"))?;
                    mode = Some(TlsMode::parse(&v)?);
                }
                "sslrootcert" => {
                    if root_cert.is_some() {
                        return Err(PgError::Repeated("sslrootcert"));
                    }
                    let v = percent_decode(value).ok_or(PgError::Escape("sslrootcert"))?;
                    if v == "system" {
                        return Err(PgError::SystemRoots);
                    }
                    root_cert = Some(PathBuf::from(v));
                }
                _ => kept.push(pair),
            }
        }
        let rest = match kept.is_empty() {
            true => base.to_string(),
            false => format!("{base}?{}", kept.join("&")),
        };
        Ok(Self {
            rest,
            mode: mode.unwrap_or(TlsMode::Prefer),
            root_cert,
        })
    }
}

/// `%XX` escapes decoded; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The CA file the connection checks against: the URL's, or libpq's default
/// `~/.postgresql/root.crt` when it exists (libpq then checks the chain in every mode but
/// `disable`).
fn root_cert_file(url: &PgUrl, home: Option<&Path>) -> Option<PathBuf> {
    url.root_cert.clone().or_else(|| {
        let default = home?.join(".postgresql/root.crt");
        default.exists().then_some(default)
    })
}

fn load_roots(path: &Path) -> Result<RootCertStore, PgError> {
    let bad = |reason: String| PgError::RootCert {
        path: path.into(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("a certificate is refused: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    Ok(roots)
}

/// The rustls configuration for the URL's mode (not `disable`); `home` holds libpq's default
/// CA file.
fn tls_config(url: &PgUrl, home: Option<&Path>) -> Result<rustls::ClientConfig, PgError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let roots = match root_cert_file(url, home) {
        Some(path) => Some(load_roots(&path)?),
        None if matches!(url.mode, TlsMode::VerifyCa | TlsMode::VerifyFull) => {
            return Err(PgError::NoRootCert {
                mode: url.mode.as_str(),
            })
        }
        None => None,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(PgError::Tls)?;
    Ok(match (url.mode, roots) {
        (TlsMode::VerifyFull, Some(roots)) => {
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        (_, roots) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier { roots, algorithms }))
            .with_no_client_auth(),
    })
}

/// libpq's checks short of `verify-full`: the chain against the CA when there is one (no host
/// name), nothing without one (`require` alone protects against eavesdropping only). The
/// handshake signatures are always checked: the server proves it holds the certificate's key.
#[derive(Debug)]
struct Verifier {
    roots: Option<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Connects as the URL says, TLS per its `sslmode`; without a password in the URL, the one in
/// `PGPASSWORD` if set.
fn connect(url: &str) -> Result<Client, JournalError> {
    let url = PgUrl::parse(url)?;
    let mut config: Config = url.rest.parse()?;
    // libpq's PGPASSWORD keeps the password off the command line.
    if config.get_password().is_none() {
        if let Some(password) = std::env::var_os("PGPASSWORD") {
            config.password(password.as_encoded_bytes());
        }
    }
    Ok(match url.mode {
        TlsMode::Disable => config.ssl_mode(SslMode::Disable).connect(NoTls)?,
        mode => {
            let home = std::env::var_os("HOME").map(PathBuf::from);
            let tls =
                tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(&url, home.as_deref())?);
            config
                .ssl_mode(match mode {
                    TlsMode::Allow | TlsMode::Prefer => SslMode::Prefer,
                    _ => SslMode::Require,
                })
                .connect(tls)?
        }
    })
}

/// The database's column types for the journal's tables.
const TYPES: ColumnTypes = ColumnTypes {
    row_id: "BIGSERIAL PRIMARY KEY",
    int: "BIGINT",
    updated: "TIMESTAMPTZ NOT NULL DEFAULT now()",
};

/// The audit log refuses changes even from roles that hold the privilege (the owner, an
/// administrator's slip): every UPDATE, DELETE and TRUNCATE raises.
const APPEND_ONLY: &str = "
    CREATE OR REPLACE FUNCTION sscard_audit_append_only() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$ LANGUAGE plpgsql;
    CREATE OR REPLACE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION sscard_audit_append_only();
    CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION sscard_audit_append_only();";

/// Advisory lock keys: schema creation, and extending the audit chain.
const SCHEMA_LOCK: i64 = 7378312;
const AUDIT_LOCK: i64 = 7378313;

/// The tables a DDL text creates, in order (`CREATE TABLE [IF NOT EXISTS] name`), as the
/// catalog spells them: unquoted names folded to lower case, quoted ones as written.
fn table_names(ddl: &str) -> Vec<String> {
    let words: Vec<String> = ddl
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|w| !w.is_empty())
        .map(
            |w| match w.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => w.to_ascii_lowercase(),
            },
        )
        .collect();
    let mut names = Vec::new();
    for (i, w) in words.windows(2).enumerate() {
        if w[0] == "create" && w[1] == "table" {
            let rest = &words[i + 2..];
            let name = match rest {
                [a, b, c, name, ..] if a == "if" && b == "not" && c == "exists" => name,
                [name, ..] => name,
                [] => continue,
            };
            names.push(name.clone());
        }
    }
    names
}

/// An SQL identifier, quoted (a role name goes into GRANT as an identifier, not a parameter).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A PostgreSQL journal database.
pub(crate) struct PgDb {
    db: Client,
}

/// The server's message, not just "db error".
pub(crate) fn detail(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => match std::error::Error::source(e) {
            // "error performing TLS handshake" alone does not say what failed.
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

impl PgDb {
    /// A station's connection: the schema must be there (see [`PgDb::create_schema`]).
    pub(crate) fn open(url: &str) -> Result<Self, JournalError> {
        let mut db = connect(url)?;
        let wanted = table_names(&tables(&TYPES));
        let missing: Vec<String> = db
            .query(
                "SELECT t FROM unnest($1::text[]) WITH ORDINALITY AS w(t, i)
                 WHERE to_regclass('public.' || quote_ident(t)) IS NULL ORDER BY i",
                &[&wanted],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !missing.is_empty() {
            return Err(PgError::NoSchema { missing }.into());
        }
        // Bounded waits: a stalled station holding the audit chain's lock, or a transaction left
        // open, ends in an error after a minute instead of stopping every station for good.
        db.batch_execute(
            "SET lock_timeout = '60s'; SET idle_in_transaction_session_timeout = '120s'",
        )?;
        Ok(Self { db })
    }

    /// Creates the journal's schema as the administrator (`admin_url`) — tables, indexes, the
    /// audit log's append-only triggers — and, given `station_role`, grants that role what a
    /// station needs and nothing more: SELECT, INSERT and UPDATE on the tables, INSERT only on
    /// the audit log, the sequences; no DDL (no CREATE on the schema or the database, no
    /// temporary tables), no DELETE, no TRUNCATE. Refuses a station role that is a superuser,
    /// can create roles, is (or inherits) the administrator, or owns anything in the
    /// database. Safe to run again: after an upgrade it adds what is new and grants again.
    pub(crate) fn create_schema(
        admin_url: &str,
        station_role: Option<&str>,
    ) -> Result<(), JournalError> {
        let mut db = connect(admin_url)?;
        let mut tx = db.transaction()?;
        // Concurrent DDL on the same catalog rows fails; one administrator at a time.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
        tx.batch_execute(&tables(&TYPES))?;
        tx.batch_execute(APPEND_ONLY)?;
        if let Some(role) = station_role {
            check_station_role(&mut tx, role)?;
            let r = quote_ident(role);
            let database: String = tx.query_one("SELECT current_database()", &[])?.get(0);
            let d = quote_ident(&database);
            tx.batch_execute(&format!(
                "REVOKE CREATE ON SCHEMA public FROM PUBLIC, {r};
                REVOKE CREATE, TEMPORARY ON DATABASE {d} FROM PUBLIC, {r};
                GRANT CONNECT ON DATABASE {d} TO {r};
                GRANT USAGE ON SCHEMA public TO {r};
                REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {r};
                GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {r};
                REVOKE UPDATE, DELETE, TRUNCATE ON audit FROM {r};
                REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {r};
                GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {r};"
            ))?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Refuses a station role that could do more than its grants: one that does not exist, a
/// superuser, one with CREATEROLE (it could grant itself more), the administrator itself or a
/// member of it, or an owner of anything in this database.
fn check_station_role(tx: &mut postgres::Transaction<'_>, role: &str) -> Result<(), JournalError> {
    let Some(r) = tx
        .query(
            "SELECT rolsuper, rolcreaterole, rolname = current_user,
                    pg_has_role(rolname, current_user, 'USAGE')
             FROM pg_roles WHERE rolname = $1",
            &[&role],
        )?
        .into_iter()
        .next()
    else {
        return Err(PgError::NoRole { role: role.into() }.into());
    };
    let too_strong = |why: &str| -> JournalError {
        PgError::RoleTooStrong {
            role: role.into(),
            why: why.into(),
        }
        .into()
    };
    if r.get::<_, bool>(0) {
        return Err(too_strong("is a superuser"));
    }
    if r.get::<_, bool>(1) {
        return Err(too_strong("has CREATEROLE"));
    }
    if r.get::<_, bool>(2) {
        return Err(too_strong("is the administrator's role"));
    }
    if r.get::<_, bool>(3) {
        return Err(too_strong("has the administrator's privileges"));
    }
    let owned: Vec<String> = tx
        .query(
            "WITH r AS (SELECT oid FROM pg_roles WHERE rolname = $1)
             SELECT 'database ' || quote_ident(datname) FROM pg_database, r
                 WHERE datdba = r.oid AND datname = current_database()
             UNION ALL SELECT 'schema ' || quote_ident(nspname) FROM pg_namespace, r
                 WHERE nspowner = r.oid
             UNION ALL SELECT 'relation ' || c.oid::regclass::text FROM pg_class c, r
                 WHERE c.relowner = r.oid
             UNION ALL SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p, r
                 WHERE p.proowner = r.oid
             ORDER BY 1",
            &[&role],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !owned.is_empty() {
        return Err(PgError::RoleOwns {
            role: role.into(),
            owned,
        }
        .into());
    }
    Ok(())
}

fn params<'p>(params: &'p [Param<'p>]) -> Vec<Box<dyn ToSql + Sync + 'p>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync> {
            match *p {
                Param::Int(i) => Box::new(i),
                Param::Text(t) => Box::new(t),
                Param::OptInt(i) => Box::new(i),
                Param::OptText(t) => Box::new(t),
            }
        })
        .collect()
}

fn cells(r: &postgres::Row) -> Result<Vec<Cell>, JournalError> {
    (0..r.len())
        .map(|i| {
            let ty = r.columns()[i].type_();
            Ok(if *ty == Type::INT8 {
                r.try_get::<_, Option<i64>>(i)?
                    .map_or(Cell::Null, Cell::Int)
            } else if *ty == Type::INT4 {
                r.try_get::<_, Option<i32>>(i)?
                    .map_or(Cell::Null, |v| Cell::Int(v.into()))
            } else {
                r.try_get::<_, Option<String>>(i)?
                    .map_or(Cell::Null, Cell::Text)
            })
        })
        .collect()
}

impl Db for PgDb {
    fn begin(&mut self, intent: Intent) -> Result<(), JournalError> {
        // Every write transaction extends the audit chain: one writer of the chain at a time.
        let lock = match intent {
            // Stations adding the same batch at once would both see a holder missing; one at a
            // time. Every write transaction extends the audit chain, so each first takes the
            // chain's lock (an advisory lock: a station may only INSERT into the audit log, which
            // allows no LOCK TABLE mode stronger than ROW EXCLUSIVE) — always first, so two
            // transactions never wait for each other's locks.
            Intent::AddHolders => format!(
                "SELECT pg_advisory_xact_lock({AUDIT_LOCK}); LOCK TABLE holders IN SHARE ROW EXCLUSIVE MODE;"
            ),
            Intent::Audit | Intent::Claim => format!("SELECT pg_advisory_xact_lock({AUDIT_LOCK});"),
            // One snapshot for the whole check: the chain and the rows as of one moment.
            Intent::Read => {
                return Ok(self
                    .db
                    .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?)
            }
        };
        Ok(self.db.batch_execute(&format!("BEGIN;{lock}"))?)
    }
    fn commit(&mut self) -> Result<(), JournalError> {
        Ok(self.db.batch_execute("COMMIT")?)
    }
    fn rollback(&mut self) -> Result<(), JournalError> {
        Ok(self.db.batch_execute("ROLLBACK")?)
    }
    fn execute(&mut self, sql: &str, p: &[Param<'_>]) -> Result<u64, JournalError> {
        let boxed = params(p);
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        Ok(self.db.execute(sql, &refs)?)
    }
    fn query(&mut self, sql: &str, p: &[Param<'_>]) -> Result<Vec<Vec<Cell>>, JournalError> {
        let boxed = params(p);
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        let rows = self.db.query(sql, &refs)?;
        rows.iter().map(cells).collect()
    }
    fn query_each(
        &mut self,
        sql: &str,
        p: &[Param<'_>],
        each: &mut dyn FnMut(Vec<Cell>) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        use postgres::fallible_iterator::FallibleIterator;
        let boxed = params(p);
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        let mut rows = self.db.query_raw(sql, refs)?;
        while let Some(r) = rows.next()? {
            each(cells(&r)?)?;
        }
        Ok(())
    }
    fn skip_locked(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }
    fn epoch_millis(&mut self) -> Result<i64, JournalError> {
        Ok(self
            .db
            .query_one("SELECT (extract(epoch FROM now()) * 1000)::BIGINT", &[])?
            .get(0))
    }
    fn timestamp(&mut self) -> Result<String, JournalError> {
        Ok(self
            .db
            .query_one(
                "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
                &[],
            )?
            .get(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(url: &str) -> PgUrl {
        PgUrl::parse(url).unwrap()
    }

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_of_the_url() {
        assert_eq!(
            parse("postgres://st:pw@db.example:5433/journal?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20file.pem&connect_timeout=5"),
            PgUrl {
                rest: "postgres://st:pw@db.example:5433/journal?application_name=x&connect_timeout=5".into(),
                mode: TlsMode::VerifyFull,
                root_cert: Some("/etc/ca file.pem".into()),
            }
        );
        assert_eq!(
            parse("postgresql://h/j?sslmode=disable"),
            PgUrl {
                rest: "postgresql://h/j".into(),
                mode: TlsMode::Disable,
                root_cert: None
            }
        );
    }

    #[test]
    fn prefer_is_the_default_as_in_libpq() {
        assert_eq!(
            parse("postgres://h/j"),
            PgUrl {
                rest: "postgres://h/j".into(),
                mode: TlsMode::Prefer,
                root_cert: None
            }
        );
    }

    #[test]
    fn every_libpq_mode_is_read() {
        for (s, m) in [
            ("disable", TlsMode::Disable),
            ("allow", TlsMode::Allow),
            ("prefer", TlsMode::Prefer),
            ("require", TlsMode::Require),
            ("verify-ca", TlsMode::VerifyCa),
            ("verify-full", TlsMode::VerifyFull),
        ] {
            assert_eq!(parse(&format!("postgres://h/j?sslmode={s}")).mode, m);
            assert_eq!(m.as_str(), s);
        }
    }

    #[test]
    fn bad_tls_parameters_are_typed_errors() {
        let err = |u: &str| PgUrl::parse(u).unwrap_err();
        assert!(
            matches!(err("postgres://h/j?sslmode=verify_full"), PgError::SslMode(m) if m == "verify_full")
        );
        assert!(matches!(err("postgres://h/j?sslmode="), PgError::SslMode(m) if m.is_empty()));
        assert!(matches!(
            err("postgres://h/j?sslmode=require&sslmode=disable"),
            PgError::Repeated("sslmode")
        ));
        assert!(matches!(
            err("postgres://h/j?sslrootcert=a&sslrootcert=b"),
            PgError::Repeated("sslrootcert")
        ));
        assert!(matches!(
            err("postgres://h/j?sslrootcert=%zz"),
            PgError::Escape("sslrootcert")
        ));
        assert!(matches!(
            err("postgres://h/j?sslrootcert=system&sslmode=verify-full"),
            PgError::SystemRoots
        ));
        assert_eq!(
            err("postgres://h/j?sslmode=Require").to_string(),
            "journal URL: sslmode=\"Require\" is not one of disable, allow, prefer, require, verify-ca, verify-full"
        );
    }

    #[test]
    fn verify_modes_need_a_ca_and_a_ca_file_must_hold_certificates() {
        let url = PgUrl {
            rest: "postgres://h/j".into(),
            mode: TlsMode::VerifyCa,
            root_cert: None,
        };
        // Without a CA in the URL, libpq's default file decides: none under this home.
        let home = std::env::temp_dir().join(format!("sscard-pg-home-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let tls_config = |url: &PgUrl| tls_config(url, Some(&home));
        assert!(matches!(
            tls_config(&url),
            Err(PgError::NoRootCert { mode: "verify-ca" })
        ));
        let empty = home.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let url = PgUrl {
            root_cert: Some(empty.clone()),
            ..url
        };
        match tls_config(&url) {
            Err(PgError::RootCert { path, reason }) => {
                assert_eq!(path, empty);
                assert_eq!(reason, "holds no PEM certificate");
            }
            other => panic!("{other:?}"),
        }
        let missing = PgUrl {
            root_cert: Some(home.join("absent.pem")),
            ..url
        };
        assert!(matches!(
            tls_config(&missing),
            Err(PgError::RootCert { .. })
        ));
        // `require` without a CA encrypts without checking, as libpq does.
        let require = PgUrl {
            mode: TlsMode::Require,
            root_cert: None,
            ..missing
        };
        assert!(tls_config(&require).is_ok());
        // libpq's default file is read when the URL names none.
        std::fs::create_dir_all(home.join(".postgresql")).unwrap();
        std::fs::copy(&empty, home.join(".postgresql/root.crt")).unwrap();
        let verify_full = PgUrl {
            mode: TlsMode::VerifyFull,
            ..require
        };
        match tls_config(&verify_full) {
            Err(PgError::RootCert { path, .. }) => {
                assert_eq!(path, home.join(".postgresql/root.crt"))
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn the_schema_check_knows_every_table_of_the_ddl() {
        assert_eq!(
            table_names(&tables(&TYPES)),
            ["holders", "spoiled", "stations", "audit"]
        );
        assert_eq!(
            table_names("create table a(x int); CREATE TABLE IF NOT EXISTS \"B\" (y int);"),
            ["a", "B"]
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("station"), "\"station\"");
        assert_eq!(
            quote_ident("a\"; DROP TABLE audit; --"),
            "\"a\"\"; DROP TABLE audit; --\""
        );
    }

    fn escape(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'/' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    proptest! {
        /// Whatever else the URL holds, the TLS parameters come out exactly and the rest of
        /// the query stays as written, in order.
        #[test]
        fn tls_parameters_round_trip(
            others in proptest::collection::vec(("[a-z_]{1,12}", "[A-Za-z0-9%._-]{0,12}"), 0..4),
            mode in proptest::option::of(0usize..6),
            root in proptest::option::of("\\PC{1,24}"),
            mode_at in 0usize..5,
            root_at in 0usize..5,
        ) {
            let modes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];
            let others: Vec<String> = others
                .into_iter()
                .filter(|(k, _)| k != "sslmode" && k != "sslrootcert")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            prop_assume!(root.as_deref() != Some("system"));
            let mut params = others.clone();
            if let Some(m) = mode {
                params.insert(mode_at.min(params.len()), format!("sslmode={}", modes[m]));
            }
            if let Some(r) = &root {
                params.insert(root_at.min(params.len()), format!("sslrootcert={}", escape(r)));
            }
            let base = "postgres://u:p@h:1/d";
            let url = match params.is_empty() {
                true => base.to_string(),
                false => format!("{base}?{}", params.join("&")),
            };
            let parsed = PgUrl::parse(&url).unwrap();
            let rest = match others.is_empty() {
                true => base.to_string(),
                false => format!("{base}?{}", others.join("&")),
            };
            prop_assert_eq!(parsed.rest, rest);
            prop_assert_eq!(parsed.mode.as_str(), mode.map_or("prefer", |m| modes[m]));
            prop_assert_eq!(parsed.root_cert, root.map(PathBuf::from));
        }

        /// The parser never panics.
        #[test]
        fn any_url_parses_or_is_refused(url in "\\PC{0,80}") {
            let _ = PgUrl::parse(&url);
        }
    }
}
