//! Harness of the key service's tests and benchmark: certificates made with the `openssl`
//! command, a running `sscard keyd serve` killed on drop, the client's environment.
//!
//! A SoftHSM2 token behind keyd is [`crate::softhsm_token_exclusive`]'s token: the returned
//! `--keys` value names it, `SOFTHSM2_CONF` is set for this process and so for keyd, and the
//! token PIN goes to keyd in `SSCARD_PKCS11_PIN` ([`Keyd::start`] sets it). SoftHSM 2.6 marks a
//! token invalid in a process that reads its files while another process logs in
//! (`docs/key-file.md`, "SoftHSM and several processes"): tests stop keyd ([`Keyd::kill`])
//! before they use the same token locally, and hold the exclusive guard for their whole run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the temporary directory, 0700, removed by [`TempDir`]'s drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!(
            "sscard-keyd-{}-{}-{name}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        set_mode(&d, 0o700);
        Self(d)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A port free on 127.0.0.1 just now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// A client's certificate and key (PEM; the key 0600).
#[derive(Clone, Debug)]
pub struct ClientCert {
    pub cn: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The test PKI, in its own directory: a server CA and the server's certificate for DNS
/// `localhost` and IP `127.0.0.1`; a client CA and one client certificate per common name; an
/// unrelated CA with one client certificate (CN `stranger`) that keyd must refuse. P-256 keys,
/// every key file 0600.
pub struct Pki {
    dir: TempDir,
    pub server_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_ca: PathBuf,
    pub other_ca: PathBuf,
    /// Signed by [`Pki::other_ca`], not by the client CA.
    pub stranger: ClientCert,
    clients: Vec<ClientCert>,
}

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

impl Pki {
    /// The PKI with client certificates for `client_cns`.
    pub fn new(client_cns: &[&str]) -> Self {
        let dir = TempDir::new("pki");
        let d = dir.path().to_path_buf();
        for (name, cn) in [
            ("server-ca", "sscard keyd test server CA"),
            ("client-ca", "sscard keyd test client CA"),
            ("other-ca", "an unrelated test CA"),
        ] {
            openssl(
                &d,
                &[
                    &["req", "-x509"][..],
                    &EC,
                    &[
                        "-keyout",
                        &format!("{name}.key"),
                        "-out",
                        &format!("{name}.crt"),
                        "-days",
                        "2",
                        "-subj",
                        &format!("/CN={cn}"),
                        "-addext",
                        "basicConstraints=critical,CA:TRUE",
                        "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign",
                    ],
                ]
                .concat(),
            );
        }
        issue(
            &d,
            "server",
            "localhost",
            "server-ca",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
             basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n",
        );
        let stranger = client(&d, "stranger", "other-ca");
        let clients = client_cns
            .iter()
            .map(|cn| client(&d, cn, "client-ca"))
            .collect();
        for f in std::fs::read_dir(&d).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "key") {
                set_mode(&p, 0o600);
            }
        }
        Self {
            server_ca: d.join("server-ca.crt"),
            server_cert: d.join("server.crt"),
            server_key: d.join("server.key"),
            client_ca: d.join("client-ca.crt"),
            other_ca: d.join("other-ca.crt"),
            stranger,
            clients,
            dir,
        }
    }

    /// The PKI's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The client certificate with common name `cn`.
    pub fn client(&self, cn: &str) -> &ClientCert {
        self.clients
            .iter()
            .find(|c| c.cn == cn)
            .unwrap_or_else(|| panic!("no client certificate {cn:?} in this PKI"))
    }

    /// The client's environment for `cert`: `SSCARD_REMOTE_CERT`, `SSCARD_REMOTE_KEY`,
    /// `SSCARD_REMOTE_CA` (the server CA).
    pub fn client_env(&self, cert: &ClientCert) -> Vec<(String, String)> {
        vec![
            ("SSCARD_REMOTE_CERT".into(), path_str(&cert.cert)),
            ("SSCARD_REMOTE_KEY".into(), path_str(&cert.key)),
            ("SSCARD_REMOTE_CA".into(), path_str(&self.server_ca)),
        ]
    }

    /// The client's environment without a client certificate (only the server CA).
    pub fn anonymous_env(&self) -> Vec<(String, String)> {
        vec![("SSCARD_REMOTE_CA".into(), path_str(&self.server_ca))]
    }
}

/// SHA-256 fingerprint of a certificate, lowercase hex without separators.
pub fn fingerprint(cert: &Path) -> String {
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("openssl runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let hex = text.trim().rsplit('=').next().unwrap_or_default();
    hex.replace(':', "").to_ascii_lowercase()
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("UTF-8 path").to_string()
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command runs (scripts/setup.sh installs openssl)");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `NAME.crt`/`NAME.key` for subject CN `cn`, signed by `ca` with extensions `ext`.
fn issue(dir: &Path, name: &str, cn: &str, ca: &str, ext: &str) {
    openssl(
        dir,
        &[
            &["req", "-new"][..],
            &EC,
            &[
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        ]
        .concat(),
    );
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

fn client(dir: &Path, cn: &str, ca: &str) -> ClientCert {
    let name = format!(
        "client-{}",
        cn.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
    );
    issue(
        dir,
        &name,
        cn,
        ca,
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=clientAuth\n",
    );
    ClientCert {
        cn: cn.into(),
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    }
}

/// How to start keyd: its key source and optional policy and audit journal.
#[derive(Clone, Debug)]
pub struct KeydConfig {
    /// `--keys` (`test`, `soft:FILE`, `psam:READER`, `pkcs11:MODULE:LABEL`).
    pub keys: String,
    /// `--audit-keys`: the audit key's source when `keys` has none (a PSAM).
    pub audit_keys: Option<String>,
    pub policy: Option<PathBuf>,
    /// `--audit sqlite:FILE`; default: a journal in keyd's own temporary directory.
    pub audit: Option<String>,
    /// Extra environment (e.g. `SSCARD_PKCS11_PIN`; [`Keyd::start`] adds the test token PIN for
    /// a `pkcs11:` source).
    pub env: Vec<(String, String)>,
}

impl KeydConfig {
    pub fn keys(keys: &str) -> Self {
        Self {
            keys: keys.into(),
            audit_keys: None,
            policy: None,
            audit: None,
            env: Vec::new(),
        }
    }
}

/// A running `sscard keyd serve` on a loopback port, SIGKILLed and reaped on drop.
pub struct Keyd {
    child: Option<Child>,
    port: u16,
    config: KeydConfig,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_ca: PathBuf,
    log: Arc<(Mutex<String>, Condvar)>,
    /// keyd's working directory: its audit journal when the configuration names none.
    dir: TempDir,
}

/// How long keyd may take to say it listens (a SoftHSM login included).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

impl Keyd {
    /// Starts keyd with `pki`'s server certificate and client CA on a free port and waits for
    /// `keyd: listening on 127.0.0.1:PORT` on its stderr.
    pub fn start(pki: &Pki, config: KeydConfig) -> Self {
        let mut keyd = Self {
            child: None,
            port: free_port(),
            config,
            server_cert: pki.server_cert.clone(),
            server_key: pki.server_key.clone(),
            client_ca: pki.client_ca.clone(),
            log: Arc::new((Mutex::new(String::new()), Condvar::new())),
            dir: TempDir::new("keyd"),
        };
        keyd.spawn();
        keyd
    }

    /// The `--keys` value of a client of this keyd.
    pub fn url(&self) -> String {
        format!("remote:https://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything keyd wrote on stderr so far (this run and the earlier ones).
    pub fn log(&self) -> String {
        self.log.0.lock().unwrap().clone()
    }

    /// The process id of the running keyd.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(crate::bin("sscard"));
        cmd.args(["keyd", "serve", "--listen", &self.addr(), "--tls-cert"])
            .arg(&self.server_cert)
            .arg("--tls-key")
            .arg(&self.server_key)
            .arg("--client-ca")
            .arg(&self.client_ca)
            .args(["--keys", &self.config.keys]);
        if let Some(p) = &self.config.policy {
            cmd.arg("--policy").arg(p);
        }
        if let Some(k) = &self.config.audit_keys {
            cmd.args(["--audit-keys", k]);
        }
        let audit = self.config.audit.clone().unwrap_or_else(|| {
            format!("sqlite:{}", self.dir.path().join("keyd-audit.db").display())
        });
        cmd.args(["--audit", &audit]).current_dir(self.dir.path());
        if self.config.keys.starts_with("pkcs11:") {
            cmd.env("SSCARD_PKCS11_PIN", crate::HSM_PIN);
        }
        cmd.envs(self.config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn sscard keyd serve");
        let stderr = child.stderr.take().expect("keyd stderr");
        // From here the drop reaps the child whatever happens.
        self.child = Some(child);
        let log = Arc::clone(&self.log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let (text, cv) = &*log;
                let mut t = text.lock().unwrap();
                t.push_str(&line);
                t.push('\n');
                cv.notify_all();
            }
            let (text, cv) = &*log;
            text.lock().unwrap().push_str("<stderr closed>\n");
            cv.notify_all();
        });
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let ready = format!("keyd: listening on {}", self.addr());
        let deadline = Instant::now() + READY_TIMEOUT;
        let (text, cv) = &*self.log;
        let mut t = text.lock().unwrap();
        let start = t.len();
        loop {
            if t[start..].contains(&ready) {
                return;
            }
            let now = Instant::now();
            if t[start..].contains("<stderr closed>") || now >= deadline {
                let log = t.clone();
                drop(t);
                let status = self.stop();
                panic!("keyd did not say {ready:?} (exit {status:?}); its stderr:\n{log}");
            }
            t = cv.wait_timeout(t, deadline - now).unwrap().0;
        }
    }

    /// Kills keyd with SIGKILL and reaps it; the port is kept for [`Keyd::restart`].
    pub fn kill(&mut self) {
        self.stop();
    }

    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }

    /// Starts keyd again on the same port with the same configuration.
    pub fn restart(&mut self) {
        self.stop();
        // The kernel may hold the port a moment after the kill; keyd binds with reuse, but a
        // slow release should not fail the test.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpListener::bind(self.addr()).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spawn();
    }
}

impl Drop for Keyd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A policy file in `dir`: `text` (TOML) written 0600.
pub fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("policy.toml");
    std::fs::write(&p, text).unwrap();
    set_mode(&p, 0o600);
    p
}

/// Runs `sscard` with `args` and the client environment `env`.
pub fn sscard_client(args: &[&str], env: &[(String, String)]) -> std::process::Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    crate::sscard_env(args, &env, None)
}

/// A byte-identical copy of [`crate::softhsm_token`]'s token directory in `dir`, with its own
/// `softhsm2.conf`: the value of `SOFTHSM2_CONF` for a keyd that serves the same keys while this
/// process uses the original (two processes on one SoftHSM token directory invalidate each
/// other's view of it, see the module doc). Call [`crate::softhsm_token`] first.
pub fn softhsm_copy(dir: &Path) -> PathBuf {
    let conf = PathBuf::from(std::env::var("SOFTHSM2_CONF").expect("softhsm_token() ran"));
    let tokens = conf.parent().unwrap().join("tokens");
    let copy = dir.join("softhsm-copy");
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy).unwrap();
    let o = Command::new("cp")
        .arg("-a")
        .arg(&tokens)
        .arg(copy.join("tokens"))
        .output()
        .expect("cp runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    crate::write_softhsm_conf(&copy)
}
