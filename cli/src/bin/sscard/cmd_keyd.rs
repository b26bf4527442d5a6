//! `sscard keyd serve`: the key service — the key-source operations over HTTPS with mutual
//! TLS, in front of a local key source (`sscard_keyd`). The audit log it writes is verified
//! with `sscard perso audit-verify --journal sqlite:FILE --keys SPEC`.

use anyhow::{Context, Result};
use sscard::keys::{self, KeySource, KeySpec};
use sscard_keyd::{AuditError, AuditLog, KeyWorker, Policy, Service};
use sscard_transport::trace::Trace;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Subcommand)]
pub enum Keyd {
    /// Serve the key-source operations (cryptogram, mac, key-load-blocks, pkey, audit-mac,
    /// preflight, info) over HTTPS with mutual TLS (docs/keyd.md). Prints `keyd: listening on
    /// ADDR` on stderr when ready; stops on SIGTERM or SIGINT after the open requests, with the
    /// audit log anchored.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 0.0.0.0:7443 (port 0: any free port, printed when ready).
    #[arg(long)]
    listen: String,
    /// The server's certificate chain (PEM).
    #[arg(long)]
    tls_cert: PathBuf,
    /// The server's private key (PEM).
    #[arg(long)]
    tls_key: PathBuf,
    /// The CA whose client certificates are accepted (PEM); any other client fails the
    /// handshake.
    #[arg(long)]
    client_ca: PathBuf,
    /// The policy file (TOML, docs/keyd.md). Without it every client of the client CA may do
    /// everything (development; a warning says so).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Key source: test | soft:FILE | psam:READER | pkcs11:MODULE:TOKEN-LABEL (token PIN from
    /// SSCARD_PKCS11_PIN or a prompt). Default: the test key set.
    #[arg(long, default_value = "test")]
    keys: String,
    /// The source of the audit key, when --keys has none (a PSAM). Default: --keys.
    #[arg(long)]
    audit_keys: Option<String>,
    /// The audit journal: sqlite:FILE (created 0600 when missing).
    #[arg(long, default_value = "sqlite:keyd-audit.db")]
    audit: String,
    /// The anchor file of the audit chain (default: beside the journal, FILE.anchor).
    #[arg(long)]
    anchor: Option<PathBuf>,
    /// The station name the audit log records (default: the host name).
    #[arg(long)]
    station: Option<String>,
}

pub fn run(cmd: Keyd) -> Result<()> {
    match cmd {
        Keyd::Serve(a) => serve(a),
    }
}

/// Opens `spec` with the token PIN already asked for (never twice).
fn opener(
    spec: KeySpec,
    pin: Option<zeroize::Zeroizing<String>>,
) -> impl Fn() -> Result<Box<dyn KeySource>, keys::KeyError> + Send + Sync + 'static {
    move || keys::open(&spec, &Trace::default(), pin.as_deref().map(|p| p.as_str()))
}

fn serve(a: ServeArgs) -> Result<()> {
    if !a.audit.starts_with("sqlite:") {
        anyhow::bail!(crate::exit::BadInput(format!(
            "--audit {:?}: the audit journal is sqlite:FILE",
            a.audit
        )));
    }
    let tls = sscard_keyd::server_config(&a.tls_cert, &a.tls_key, &a.client_ca)?;
    let policy = match &a.policy {
        Some(p) => Policy::from_file(p)?,
        None => {
            eprintln!("keyd: warning: no --policy: every client with a certificate from the client CA may use every operation, region and key (development only)");
            Policy::open_to_all()
        }
    };
    let spec: KeySpec = a.keys.parse()?;
    let audit_spec: KeySpec = match &a.audit_keys {
        Some(s) => s.parse()?,
        None => spec.clone(),
    };
    if let Some(w) = spec.warning() {
        eprintln!("keyd: warning: {w}");
    }
    // One prompt for the token PIN, whichever source needs it.
    let pin = match (spec.needs_token_pin(), audit_spec.needs_token_pin()) {
        (false, false) => None,
        _ => Some(crate::connect::token_pin()?),
    };
    // Software keys on the request's thread, other sources on a thread of their own.
    let keys = KeyWorker::for_spec(&spec, opener(spec.clone(), pin.clone()))
        .context("opening the key source")?;
    let anchor = a
        .anchor
        .clone()
        .unwrap_or_else(|| sscard_perso::journal::default_anchor_path(&a.audit));
    let open_audit = opener(audit_spec, pin);
    let audit = AuditLog::start(
        a.audit.clone(),
        anchor,
        a.station
            .clone()
            .unwrap_or_else(sscard_perso::journal::host_name),
        move || open_audit().map_err(AuditError::from),
    )
    .context("opening the audit log")?;
    let service = Arc::new(Service::new(policy, keys, audit.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        let addr = listener.local_addr()?;
        eprintln!("keyd: listening on {addr}");
        sscard_keyd::serve(listener, tls, service, stop_signal()).await;
        anyhow::Ok(())
    })?;
    audit
        .stop()
        .context("recording the stop in the audit log")?;
    eprintln!("keyd: stopped");
    Ok(())
}

/// SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
