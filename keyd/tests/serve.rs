//! keyd in-process with real TLS on loopback: certificates made here (rcgen), the test key
//! set behind it, requests through a real rustls client. Answers equal the key source's own,
//! the policy refuses what it should (401, 403), a foreign CA or no certificate fails the
//! handshake, the rate limit answers 429, and the audit log verifies afterwards.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::{json, Value};
use sscard::keys::{CardRef, KeyError, KeySource, SoftKeys};
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::Kid;
use sscard_keyd::{AuditLog, KeyWorker, Policy, Service};
use sscard_perso::journal::Journal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().clone();
        Self { params, key, der }
    }

    /// A leaf certificate and its key.
    fn issue(&self, cn: &str, sans: &[&str]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (
            cert.der().clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

const POLICY: &str = r#"
[[client]]
name = "desk A"
cn = "desk-a"
regions = ["110100"]
kids = ["IRK", "RKSSSE"]
operations = ["cryptogram", "info", "pkey"]

[[client]]
name = "limited"
cn = "limited"
regions = ["11"]
kids = ["IRK"]
operations = ["cryptogram"]
rate = { per_second = 0.001, burst = 2 }

[[client]]
name = "factory"
cn = "factory"
regions = ["11"]
kids = ["IRK", "RKSSSE", "UK_N", "EAK_L", "UK_L", "RPK", "UPK", "TK", "PIN"]
operations = ["cryptogram", "mac", "key-load-blocks", "pkey", "audit-mac", "preflight", "info"]
"#;

const CARD_A: &str = "110100D1560000050000000012345678";
const CARD_B: &str = "120100D1560000050000000012345678";

struct Keyd {
    addr: SocketAddr,
    server_ca: CertificateDer<'static>,
    client_ca: Ca,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    audit: AuditLog,
    journal: PathBuf,
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keyd-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn start(name: &str) -> Keyd {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let (cert, key) = server_ca.issue("keyd", &["localhost", "127.0.0.1"]);
    let mut roots = RootCertStore::empty();
    roots.add(client_ca.der.clone()).unwrap();
    let tls = sscard_keyd::tls::build(vec![cert], key, roots).unwrap();
    let keys =
        KeyWorker::start(
            || Ok::<_, KeyError>(Box::new(SoftKeys::test_set()) as Box<dyn KeySource>),
        )
        .unwrap();
    let dir = temp(name);
    let journal = dir.join("audit.db");
    let audit = AuditLog::start(
        format!("sqlite:{}", journal.display()),
        dir.join("audit.db.anchor"),
        "keyd-test".into(),
        || Ok(Box::new(SoftKeys::test_set()) as Box<dyn KeySource>),
    )
    .unwrap();
    let service = Arc::new(Service::new(
        Policy::parse(POLICY, "test policy").unwrap(),
        keys,
        audit.clone(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(sscard_keyd::serve(listener, tls, service, async {
        let _ = stopped.await;
    }));
    Keyd {
        addr,
        server_ca: server_ca.der.clone(),
        client_ca,
        stop: Some(stop),
        done,
        audit,
        journal,
    }
}

impl Keyd {
    fn client_config(
        &self,
        identity: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    ) -> ClientConfig {
        let mut roots = RootCertStore::empty();
        roots.add(self.server_ca.clone()).unwrap();
        let b =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots);
        match identity {
            Some((c, k)) => b.with_client_auth_cert(vec![c], k).unwrap(),
            None => b.with_no_client_auth(),
        }
    }

    /// One request on a new connection: `(status, body)`, or the connection's error.
    async fn call(
        &self,
        config: ClientConfig,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
        let conn = tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .unwrap();
        let res = match send.send_request(req).await {
            Ok(r) => r,
            // The connection's own error says why (a TLS alert), whichever came first.
            Err(e) => {
                return Err(match conn.await {
                    Ok(Err(c)) => format!("{c:?}"),
                    _ => format!("{e:?}"),
                })
            }
        };
        let status = res.status().as_u16();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((
            status,
            serde_json::from_slice(&bytes).map_err(|e| e.to_string())?,
        ))
    }

    async fn as_client(
        &self,
        cn: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let config = self.client_config(Some(self.client_ca.issue(cn, &[])));
        self.call(config, method, path, body).await.unwrap()
    }

    /// Stops the server, records the stop, and verifies the audit log: its entry count.
    async fn stop_and_verify(mut self) -> i64 {
        self.stop.take().unwrap().send(()).unwrap();
        self.done.await.unwrap();
        self.audit.stop().unwrap();
        let url = format!("sqlite:{}", self.journal.display());
        let mut j =
            Journal::open_audited(&url, Box::new(SoftKeys::test_set()), "verify", "test").unwrap();
        let anchor = PathBuf::from(format!("{}.anchor", self.journal.display()));
        j.audit_verify(&anchor).unwrap().unwrap().entries
    }
}

fn cryptogram(card: &str) -> Value {
    json!({"algorithm": "sm4", "card_id": card, "kid": "IRK", "random": "0102030405060708"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_equal_the_key_source_and_the_policy_refuses() {
    let keyd = start("answers").await;

    let (status, info) = keyd.as_client("desk-a", "GET", "/v1/info", None).await;
    assert_eq!(status, 200);
    let mut soft = SoftKeys::test_set();
    assert_eq!(
        info,
        json!({"source": soft.describe(), "algorithm": null, "region": soft.region().unwrap(), "terminal_number": null})
    );

    let (status, c) = keyd
        .as_client("desk-a", "POST", "/v1/cryptogram", Some(cryptogram(CARD_A)))
        .await;
    assert_eq!(status, 200);
    let card: [u8; 16] = sscard_core::hexfmt::parse_hex(CARD_A)
        .unwrap()
        .try_into()
        .unwrap();
    let want = soft
        .cryptogram(
            Algorithm::Sm4,
            &CardRef::new(card),
            Kid::Irk,
            &[1, 2, 3, 4, 5, 6, 7, 8],
        )
        .unwrap();
    assert_eq!(c, json!({"cryptogram": to_hex(&want)}));

    // Another city's card: refused by the rule, which is named.
    let (status, e) = keyd
        .as_client("desk-a", "POST", "/v1/cryptogram", Some(cryptogram(CARD_B)))
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        e,
        json!({"error": {"kind": "forbidden", "code": -2304, "message": "policy rule \"desk A\" does not allow region 120100"}})
    );
    // A front desk does not build WRITE KEY blocks.
    let (status, e) = keyd
        .as_client(
            "desk-a",
            "POST",
            "/v1/key-load-blocks",
            Some(
                json!({"algorithm": "sm4", "card_id": CARD_A, "keys": [{"kid": "TK", "tries": 3}]}),
            ),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        e["error"]["message"],
        "policy rule \"desk A\" does not allow the operation key-load-blocks"
    );
    // A certificate of the client CA that no rule names.
    let (status, e) = keyd.as_client("stranger", "GET", "/v1/info", None).await;
    assert_eq!(status, 401);
    assert_eq!(e["error"]["kind"], "unauthorised");

    // The factory gets its blocks, equal to the source's, in order, in one request.
    let (status, b) = keyd
        .as_client(
            "factory",
            "POST",
            "/v1/key-load-blocks",
            Some(json!({"algorithm": "sm4", "card_id": CARD_A, "keys": [{"kid": "IRK", "tries": 0}, {"kid": "PIN", "tries": 3}]})),
        )
        .await;
    assert_eq!(status, 200);
    let card = CardRef::new(card);
    let want: Vec<String> = [(Kid::Irk, 0), (Kid::Pin, 3)]
        .map(|(k, t)| to_hex(&soft.key_load_block(Algorithm::Sm4, &card, k, t).unwrap()))
        .to_vec();
    assert_eq!(b, json!({"blocks": want}));

    // MAC and audit MAC equal the source's.
    let (status, m) = keyd
        .as_client(
            "factory",
            "POST",
            "/v1/mac",
            Some(json!({"algorithm": "3des", "card_id": CARD_A, "kid": "UK_L", "challenge": "1122334455667788", "message": "04DC010C05AABBCCDDEE"})),
        )
        .await;
    assert_eq!(status, 200);
    let want = soft
        .mac(
            Algorithm::Tdes,
            &card,
            Kid::UkL,
            &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88],
            &sscard_core::hexfmt::parse_hex("04DC010C05AABBCCDDEE").unwrap(),
        )
        .unwrap();
    assert_eq!(m, json!({"mac": to_hex(&want)}));
    let (status, m) = keyd
        .as_client(
            "factory",
            "POST",
            "/v1/audit-mac",
            Some(json!({"message": "00FF"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        m,
        json!({"mac": to_hex(&soft.audit_mac(&[0, 0xFF]).unwrap())})
    );

    // keyd's own log is not the client's to MAC: an entry naming keyd's station or actor, or an
    // anchor of keyd's station, is refused (403, audited) whoever asks.
    let field = |m: &mut Vec<u8>, f: &str| {
        m.extend_from_slice(&(f.len() as u64).to_be_bytes());
        m.extend_from_slice(f.as_bytes());
    };
    let mut entry = b"sscard audit v2".to_vec();
    for f in [
        "00",
        "2",
        "2026-12-02 21:00:00",
        "keyd@keyd-test",
        "keyd",
        "keyd cryptogram",
        "",
        "",
        "",
        "client=forged",
    ] {
        field(&mut entry, f);
    }
    let mut anchor = b"sscard anchor v1".to_vec();
    for f in ["2026-12-02 21:00:00", "keyd@keyd-test", "2", "00"] {
        field(&mut anchor, f);
    }
    for message in [entry, anchor] {
        let (status, e) = keyd
            .as_client(
                "factory",
                "POST",
                "/v1/audit-mac",
                Some(json!({"message": to_hex(&message)})),
            )
            .await;
        assert_eq!(status, 403);
        assert_eq!(
            e,
            json!({"error": {"kind": "forbidden", "code": sscard_core::profile::codes::KEY_SERVICE_REFUSED, "message": "audit-mac: the message is an entry or anchor of keyd's own audit log (station keyd@…, actor keyd), which keyd MACs for no client"}})
        );
    }

    // Nor an entry of another station chained onto keyd's head (past its last anchor).
    let head = {
        let url = format!("sqlite:{}", keyd.journal.display());
        let mut j =
            Journal::open_audited(&url, Box::new(SoftKeys::test_set()), "read", "test").unwrap();
        let elsewhere = keyd.journal.with_extension("head-anchor");
        j.anchor(&elsewhere).unwrap().head
    };
    let mut chained = b"sscard audit v2".to_vec();
    for f in [
        head.as_str(),
        "14",
        "2026-12-02 21:00:00",
        "plant-2",
        "operator",
        "claimed",
        "",
        "",
        "",
        "x",
    ] {
        field(&mut chained, f);
    }
    let (status, e) = keyd
        .as_client(
            "factory",
            "POST",
            "/v1/audit-mac",
            Some(json!({"message": to_hex(&chained)})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        e,
        json!({"error": {"kind": "forbidden", "code": sscard_core::profile::codes::KEY_SERVICE_REFUSED, "message": "audit-mac: the message is an entry chained onto keyd's own audit log after its last anchor, which keyd MACs for no client"}})
    );

    // The two-step pKey equals the source's.
    let line = sscard::unified::Step1Line {
        region: "110100".into(),
        historical_bytes: vec![0x86, 0x13],
        algorithm: Algorithm::Sm4,
        card_id: *b"\x11\x01\x00\xD1\x56\x00\x00\x05\x00\x00\x00\x00\x12\x34\x56\x78",
        random: [1, 2, 3, 4, 5, 6, 7, 8],
        challenge: Some([8, 7, 6, 5, 4, 3, 2, 1]),
        terminal_number: String::new(),
    };
    let (status, p) = keyd
        .as_client(
            "desk-a",
            "POST",
            "/v1/pkey",
            Some(json!({"step1": line.to_string()})),
        )
        .await;
    assert_eq!(status, 200);
    let want = sscard::unified::hsm_step2_key(&mut soft, &line).unwrap();
    assert_eq!(p, json!({"pkey": want.to_string()}));

    // A key-source error is a 422 with the source's return code.
    let (status, e) = keyd
        .as_client(
            "factory",
            "POST",
            "/v1/cryptogram",
            Some(json!({"algorithm": "3des", "card_id": CARD_A, "kid": "IRK", "random": "000102030405060708"})),
        )
        .await;
    let want = soft
        .cryptogram(
            Algorithm::Tdes,
            &card,
            Kid::Irk,
            &[0, 1, 2, 3, 4, 5, 6, 7, 8],
        )
        .unwrap_err();
    assert_eq!(status, 422);
    assert_eq!(
        e,
        json!({"error": {"kind": "key", "code": sscard_core::classify::Classified::return_code(&want), "message": want.to_string()}})
    );

    // Bad input is a 400 naming the field.
    let (status, e) = keyd
        .as_client(
            "factory",
            "POST",
            "/v1/cryptogram",
            Some(json!({"algorithm": "aes", "card_id": CARD_A, "kid": "IRK", "random": "00"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        e,
        json!({"error": {"kind": "bad_request", "code": -23, "message": "request body: unknown variant `aes`, expected `3des` or `sm4` at line 1 column 18"}})
    );

    // started + 13 requests audited (the 400 is not an operation) + stopped.
    assert_eq!(keyd.stop_and_verify().await, 1 + 13 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_or_missing_client_certificates_fail_the_handshake() {
    let keyd = start("handshake").await;
    // A CA of another name: unknown to the server.
    let other_ca = Ca::new("other CA");
    let foreign = keyd.client_config(Some(other_ca.issue("desk-a", &[])));
    let e = keyd
        .call(foreign, "GET", "/v1/info", None)
        .await
        .unwrap_err();
    assert!(e.contains("AlertReceived(UnknownCA)"), "{e}");
    // An impostor CA of the same name: its signature does not verify.
    let impostor = Ca::new("client CA");
    let forged = keyd.client_config(Some(impostor.issue("desk-a", &[])));
    let e = keyd
        .call(forged, "GET", "/v1/info", None)
        .await
        .unwrap_err();
    assert!(e.contains("AlertReceived(DecryptError)"), "{e}");
    // No certificate at all.
    let none = keyd.client_config(None);
    let e = keyd.call(none, "GET", "/v1/info", None).await.unwrap_err();
    assert!(e.contains("AlertReceived(CertificateRequired)"), "{e}");
    // Nothing reached the service: only start and stop are in the log.
    assert_eq!(keyd.stop_and_verify().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_limit_is_429() {
    let keyd = start("rate").await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            keyd.as_client(
                "limited",
                "POST",
                "/v1/cryptogram",
                Some(cryptogram(CARD_A)),
            )
            .await
            .0,
        );
    }
    assert_eq!(statuses, [200, 200, 429]);
    let (_, e) = keyd
        .as_client(
            "limited",
            "POST",
            "/v1/cryptogram",
            Some(cryptogram(CARD_A)),
        )
        .await;
    assert_eq!(e["error"]["kind"], "rate_limited");
    keyd.stop_and_verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_each_answered_and_each_audited() {
    let keyd = Arc::new(start("concurrent").await);
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let keyd = keyd.clone();
        tasks.push(tokio::spawn(async move {
            let random = to_hex(&[i; 8]);
            keyd.as_client(
                "factory",
                "POST",
                "/v1/cryptogram",
                Some(
                    json!({"algorithm": "sm4", "card_id": CARD_A, "kid": "IRK", "random": random}),
                ),
            )
            .await
        }));
    }
    let card: [u8; 16] = sscard_core::hexfmt::parse_hex(CARD_A)
        .unwrap()
        .try_into()
        .unwrap();
    let mut soft = SoftKeys::test_set();
    for (i, t) in tasks.into_iter().enumerate() {
        let want = soft
            .cryptogram(Algorithm::Sm4, &CardRef::new(card), Kid::Irk, &[i as u8; 8])
            .unwrap();
        assert_eq!(
            t.await.unwrap(),
            (200, json!({"cryptogram": to_hex(&want)}))
        );
    }
    let keyd = Arc::try_unwrap(keyd).ok().unwrap();
    assert_eq!(keyd.stop_and_verify().await, 1 + 16 + 1);
}
