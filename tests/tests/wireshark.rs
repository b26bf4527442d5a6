//! The Wireshark dissector `contrib/wireshark/sscard.lua` on the pcapng files sscard writes
//! through pcscd: `info` on a 3DES and an SM4 card, a line-protected write MACed by the PSAM and
//! a VERIFY, each decoded by `tshark -X lua_script:…` line for line (random challenges and
//! cryptograms checked for their shape only), with no Lua error; and a trace from another tool
//! with a PIN in the clear, whose digits the dissector never shows.

use sscard_e2e::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const DISSECTOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../contrib/wireshark/sscard.lua"
);

/// The dissector's fields the tests print, in this order; the last four hold random challenges,
/// cryptograms and MACs, compared by shape.
const FIELDS: [&str; 17] = [
    "frame.number",
    "sscard.command",
    "sscard.psam.command",
    "sscard.file",
    "sscard.record",
    "sscard.field",
    "sscard.value",
    "sscard.kid",
    "sscard.step",
    "sscard.secret",
    "sscard.algorithm",
    "sscard.life_cycle",
    "sscard.sw.meaning",
    "sscard.random",
    "sscard.cryptogram",
    "sscard.iv",
    "sscard.mac",
];
const SHAPED: usize = 4;

/// One test's files, removed when it passes (kept for a look when it fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("sscard-wireshark-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs tshark with the dissector on `pcap`; asserts it succeeded and wrote nothing on stderr
/// but the warning about running as root.
fn tshark(pcap: &Path, args: &[&str]) -> String {
    let o = Command::new("tshark")
        .args(["-X", &format!("lua_script:{DISSECTOR}")])
        .args(["-r", pcap.to_str().unwrap()])
        .args(["-d", "iso14443.subdissector,iso7816"])
        .args(args)
        .output()
        .expect("tshark runs (scripts/setup.sh installs it)");
    let err = String::from_utf8_lossy(&o.stderr);
    let unexpected: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("Running as user \"root\""))
        .collect();
    assert!(
        o.status.success() && unexpected.is_empty(),
        "tshark {args:?}: {}\n{err}",
        o.status
    );
    let out = String::from_utf8(o.stdout).expect("tshark writes UTF-8");
    assert!(!out.contains("Lua Error"), "{out}");
    out
}

/// One line per frame: the fields of [`FIELDS`], each value of the shaped ones replaced by
/// `<N bytes>` once checked to be hex.
fn decoded(pcap: &Path) -> String {
    let mut args = vec!["-T", "fields"];
    for f in FIELDS {
        args.extend(["-e", f]);
    }
    let out = tshark(pcap, &args);
    // Two passes (as Wireshark's GUI dissects): the second shows what the first learnt.
    let two_pass: Vec<&str> = ["-2"].into_iter().chain(args.iter().copied()).collect();
    assert_eq!(tshark(pcap, &two_pass), out, "tshark -2");
    // The whole tree too, for a Lua error in a part the fields do not reach.
    tshark(pcap, &["-V"]);
    let mut lines = String::new();
    for line in out.lines() {
        let mut cols: Vec<String> = line.split('\t').map(str::to_string).collect();
        assert_eq!(cols.len(), FIELDS.len(), "{line}");
        for col in &mut cols[FIELDS.len() - SHAPED..] {
            if col.is_empty() {
                continue;
            }
            let shapes: Vec<String> = col
                .split(',')
                .map(|v| {
                    assert!(
                        v.len() % 2 == 0 && v.bytes().all(|b| b.is_ascii_hexdigit()),
                        "{v:?} in {line}"
                    );
                    format!("<{} bytes>", v.len() / 2)
                })
                .collect();
            *col = shapes.join(",");
        }
        lines.push_str(&cols.join("\t"));
        lines.push('\n');
    }
    lines
}

fn assert_lines(what: &str, got: &str, want: &str) {
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "{what}: line {}", i + 1);
    }
    assert_eq!(got.lines().count(), want.lines().count(), "{what}:\n{got}");
}

fn info_pcap(pcap: &Path) {
    let o = sscard(&[
        "info",
        "--reader",
        READER_0,
        "--psam-reader",
        READER_1,
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

/// The PSAM's part of `info` before the card's: select its DF01, EF15 and EF16; then SSSE and
/// EF05 on the card. `ALG` and `VERSION` differ between the cards.
const INFO_START: &str = "\
1\tSELECT\t\tPSAM DF01\t\t\t\t\t\t\t\t\t\t\t\t\t
2\tSELECT\t\tPSAM DF01\t\t\t\t\t\t\t\t\tsuccess\t\t\t\t
3\tREAD BINARY\t\tPSAM EF15\t\t\t\t\t\t\t\t\t\t\t\t\t
4\tREAD BINARY\t\tPSAM EF15\t\tserial number,version,algorithm,issuer region,key level,start date,expiry date\t11010000000000000001,01,ALG,110100,city,2024-01-01,2034-01-01\t\t\t\t\t\tsuccess\t\t\t\t
5\tREAD BINARY\t\tPSAM EF16\t\t\t\t\t\t\t\t\t\t\t\t\t
6\tREAD BINARY\t\tPSAM EF16\t\tterminal number\t110100000001\t\t\t\t\t\tsuccess\t\t\t\t
7\tSELECT\t\tSSSE\t\t\t\t\t\t\t\t\t\t\t\t\t
8\tSELECT\t\tSSSE\t\tDF name\tSSSE\t\t\t\tALG (VERSION)\tISSUED\tsuccess\t\t\t\t
9\tREAD RECORD\t\tEF05\t1\t\t\t\t\t\t\t\t\t\t\t\t
10\tREAD RECORD\t\tEF05\t1,2,3,4,5,6,7\tcard identification code,card type,specification version,initialisation organisation,issue date,expiry date,card number\t110100D15600000599110145000000A1,3,VERSION,110100000000000000000001,2024-01-01,2034-01-01,A12345674\t\t\t\t\t\tsuccess\t\t\t\t
";

fn info_start(alg: &str, version: &str) -> String {
    INFO_START.replace("ALG", alg).replace("VERSION", version)
}

#[test]
fn info_on_a_3des_card_decodes_in_tshark() {
    let _g = exclusive();
    let scratch = Scratch::new("info-3des");
    let pcap = scratch.file("info-3des.pcapng");
    {
        let _m = ModelServer::start(&[], &[READER_0, READER_1]);
        info_pcap(&pcap);
    }
    let want = info_start("3DES", "2.00")
        + "\
11\tINTERNAL AUTHENTICATE\t\t\t\t\t\t0x08\tinternal authentication: the card proves it is genuine\t\t\t\t\t<8 bytes>\t\t\t
12\tINTERNAL AUTHENTICATE\t\t\t\t\t\t\tthe card's cryptogram, for the terminal to check\t\t\t\tsuccess\t\t<8 bytes>\t\t
13\tDES INIT\tDES INIT\t\t\t\t\t0x08\tPSAM: derive the card's IRK from 1 factor(s)\t\t\t\t\t\t\t\t
14\tDES INIT\tDES INIT\t\t\t\t\t\t\t\t\t\tsuccess\t\t\t\t
15\tDES CRYPT\tDES CRYPT\t\t\t\t\t\tPSAM: cryptogram under IRK\t\t\t\t\t<8 bytes>\t\t\t
16\tDES CRYPT\tDES CRYPT\t\t\t\t\t\t\t\t\t\t8 response bytes available (GET RESPONSE)\t\t\t\t
17\tGET RESPONSE\t\t\t\t\t\t\tfetch the answer of DES CRYPT\t\t\t\t\t\t\t\t
18\tGET RESPONSE\t\t\t\t\t\t\tthe PSAM's cryptogram\tmasked (8 bytes)\t\t\tsuccess\t\t\t\t
19\tREAD RECORD\t\tEF06\t1\t\t\t\t\t\t\t\t\t\t\t\t
20\tREAD RECORD\t\tEF06\t1,2,3,4,5,6,7\tsocial security number,name,name extension,gender,ethnic group,birthplace,birth date\t11010519491231002X,张三,(not written),2,01,110105,1949-12-31\t\t\t\t\t\tsuccess\t\t\t\t
";
    assert_lines("info 3DES", &decoded(&pcap), &want);
    // The dissector's summary, appended to the Info column in brackets.
    let info = tshark(&pcap, &["-T", "fields", "-e", "_ws.col.Info"]);
    let summaries: Vec<&str> = info
        .lines()
        .map(|l| {
            l.rsplit_once(" [")
                .and_then(|(_, s)| s.strip_suffix(']'))
                .unwrap_or_else(|| panic!("no summary in {l:?}"))
        })
        .collect();
    assert_eq!(
        summaries,
        [
            "SELECT PSAM DF01",
            "response to SELECT PSAM DF01: 9000 success",
            "READ BINARY PSAM EF15",
            "response to READ BINARY PSAM EF15: 9000 success",
            "READ BINARY PSAM EF16",
            "response to READ BINARY PSAM EF16: 9000 success",
            "SELECT SSSE",
            "response to SELECT SSSE: 9000 success",
            "READ RECORD EF05 #1 to last",
            "response to READ RECORD EF05 #1 to last: 9000 success",
            "INTERNAL AUTHENTICATE IRK",
            "response to INTERNAL AUTHENTICATE IRK: 9000 success",
            "DES INIT IRK",
            "response to DES INIT IRK: 9000 success",
            "DES CRYPT IRK",
            "response to DES CRYPT IRK: 6108 8 response bytes available (GET RESPONSE)",
            "GET RESPONSE of DES CRYPT",
            "response to GET RESPONSE of DES CRYPT: 9000 success",
            "READ RECORD EF06 #1 to last",
            "response to READ RECORD EF06 #1 to last: 9000 success",
        ]
    );
}

#[test]
fn info_on_an_sm4_card_decodes_in_tshark() {
    let _g = exclusive();
    let scratch = Scratch::new("info-sm4");
    let pcap = scratch.file("info-sm4.pcapng");
    {
        let _m = ModelServer::start(&["--alg", "sm4"], &[READER_0, READER_1]);
        info_pcap(&pcap);
    }
    let want = info_start("SM4", "3.00")
        + "\
11\tINTERNAL AUTHENTICATE\t\t\t\t\t\t0x08\tinternal authentication: the card proves it is genuine\t\t\t\t\t<8 bytes>\t\t\t
12\tINTERNAL AUTHENTICATE\t\t\t\t\t\t\tthe card's cryptogram, for the terminal to check\t\t\t\tsuccess\t\t<16 bytes>\t\t
13\tDES INIT\tDES INIT\t\t\t\t\t0x08\tPSAM: derive the card's IRK from 1 factor(s)\t\t\t\t\t\t\t\t
14\tDES INIT\tDES INIT\t\t\t\t\t\t\t\t\t\tsuccess\t\t\t\t
15\tDES CRYPT\tDES CRYPT\t\t\t\t\t\tPSAM: cryptogram under IRK\t\t\t\t\t<16 bytes>\t\t\t
16\tDES CRYPT\tDES CRYPT\t\t\t\t\t\t\t\t\t\t16 response bytes available (GET RESPONSE)\t\t\t\t
17\tGET RESPONSE\t\t\t\t\t\t\tfetch the answer of DES CRYPT\t\t\t\t\t\t\t\t
18\tGET RESPONSE\t\t\t\t\t\t\tthe PSAM's cryptogram\tmasked (16 bytes)\t\t\tsuccess\t\t\t\t
19\tGET CHALLENGE\t\t\t\t\t\t\tchallenge for external authentication\t\t\t\t\t\t\t\t
20\tGET CHALLENGE\t\t\t\t\t\t\t\t\t\t\tsuccess\t<8 bytes>\t\t\t
21\tDES INIT\tDES INIT\t\t\t\t\t0x0a\tPSAM: derive the card's RKSSSE from 1 factor(s)\t\t\t\t\t\t\t\t
22\tDES INIT\tDES INIT\t\t\t\t\t\t\t\t\t\tsuccess\t\t\t\t
23\tDES CRYPT\tDES CRYPT\t\t\t\t\t\tPSAM: cryptogram under RKSSSE\t\t\t\t\t<16 bytes>\t\t\t
24\tDES CRYPT\tDES CRYPT\t\t\t\t\t\t\t\t\t\t16 response bytes available (GET RESPONSE)\t\t\t\t
25\tGET RESPONSE\t\t\t\t\t\t\tfetch the answer of DES CRYPT\t\t\t\t\t\t\t\t
26\tGET RESPONSE\t\t\t\t\t\t\tthe PSAM's cryptogram\tmasked (16 bytes)\t\t\tsuccess\t\t\t\t
27\tEXTERNAL AUTHENTICATE\t\t\t\t\t\t0x0a\texternal authentication with RKSSSE\tmasked (16 bytes)\t\t\t\t\t\t\t
28\tEXTERNAL AUTHENTICATE\t\t\t\t\t\t\t\t\t\t\tsuccess\t\t\t\t
29\tREAD RECORD\t\tEF06\t1\t\t\t\t\t\t\t\t\t\t\t\t
30\tREAD RECORD\t\tEF06\t1,2,3,4,5,6,7\tsocial security number,name,name extension,gender,ethnic group,birthplace,birth date\t11010519491231002X,张三,(not written),2,01,110105,1949-12-31\t\t\t\t\t\tsuccess\t\t\t\t
";
    assert_lines("info SM4", &decoded(&pcap), &want);
}

/// `write` MACs an UPDATE RECORD in the PSAM (GET CHALLENGE 4, DES INIT UK_N, DES CRYPT 05),
/// and `pin verify` sends a VERIFY whose PIN sscard masks in the pcap and the dissector names
/// masked.
#[test]
fn a_line_protected_write_and_a_verify_decode_in_tshark() {
    let _g = exclusive();
    let scratch = Scratch::new("write-verify");
    let (write, verify) = {
        let _m = ModelServer::start(&[], &[READER_0, READER_1]);
        let write = scratch.file("write.pcapng");
        let o = sscard(&[
            "write",
            "EF06",
            "--record",
            "4",
            "--tlv",
            "0A0131",
            "--reader",
            READER_0,
            "--psam-reader",
            READER_1,
            "--pcap",
            write.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        let verify = scratch.file("verify.pcapng");
        let o = sscard_env(
            &[
                "pin",
                "verify",
                "--pin-stdin",
                "--reader",
                READER_0,
                "--pcap",
                verify.to_str().unwrap(),
            ],
            &[],
            Some("123456\n"),
        );
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        (write, verify)
    };
    let want = info_start("3DES", "2.00")
        + "\
11\tGET CHALLENGE\t\t\t\t\t\t\tchallenge for a line-protection MAC\t\t\t\t\t\t\t\t
12\tGET CHALLENGE\t\t\t\t\t\t\t\t\t\t\tsuccess\t<4 bytes>\t\t\t
13\tDES INIT\tDES INIT\t\t\t\t\t0x03\tPSAM: derive the card's UK_N from 1 factor(s)\t\t\t\t\t\t\t\t
14\tDES INIT\tDES INIT\t\t\t\t\t\t\t\t\t\tsuccess\t\t\t\t
15\tDES CRYPT\tDES CRYPT\t\t\t\t\t\tPSAM: MAC for line protection under UK_N\t\t\t\t\t\t\t<8 bytes>\t
16\tDES CRYPT\tDES CRYPT\t\t\t\t\t\t\t\t\t\t4 response bytes available (GET RESPONSE)\t\t\t\t
17\tGET RESPONSE\t\t\t\t\t\t\tfetch the answer of DES CRYPT\t\t\t\t\t\t\t\t
18\tGET RESPONSE\t\t\t\t\t\t\tthe PSAM's MAC\tmasked (4 bytes)\t\t\tsuccess\t\t\t\t
19\tUPDATE RECORD\t\tEF06\t4\tgender\t1\t\tline-protected write, MAC under UK_N\t\t\t\t\t\t\t\t<4 bytes>
20\tUPDATE RECORD\t\tEF06\t\t\t\t\t\t\t\t\tsuccess\t\t\t\t
";
    assert_lines("write", &decoded(&write), &want);
    // The MAC input the PSAM MACs: header, Lc (with the MAC's 4 bytes), the record's TLV.
    let mac_input = tshark(
        &write,
        &[
            "-Y",
            "frame.number == 15",
            "-T",
            "fields",
            "-e",
            "sscard.mac_input",
        ],
    );
    assert_eq!(mac_input, "04dc0434070a0131\n");
    let want = "\
1\tSELECT\t\tSSSE\t\t\t\t\t\t\t\t\t\t\t\t\t
2\tSELECT\t\tSSSE\t\tDF name\tSSSE\t\t\t\t3DES (2.00)\tISSUED\tsuccess\t\t\t\t
3\tVERIFY\t\t\t\t\t\t\tPIN verification\tmasked (3 bytes)\t\t\t\t\t\t\t
4\tVERIFY\t\t\t\t\t\t\t\t\t\t\tsuccess\t\t\t\t
";
    assert_lines("verify", &decoded(&verify), want);
}

/// A pcapng of another tool, one interface of link type 264 (ISO 14443, as sscard writes),
/// its APDUs in the clear.
fn clear_pcapng(exchanges: &[(&[u8], &[u8])]) -> Vec<u8> {
    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        let mut b = kind.to_le_bytes().to_vec();
        b.extend_from_slice(&total.to_le_bytes());
        b.extend_from_slice(body);
        b.resize(8 + padded, 0);
        b.extend_from_slice(&total.to_le_bytes());
        b
    }
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut out = block(0x0A0D_0D0A, &shb);
    let mut idb = 264u16.to_le_bytes().to_vec();
    idb.extend_from_slice(&[0; 6]);
    out.extend(block(1, &idb));
    let mut pcb = 0x02u8;
    for (command, response) in exchanges {
        for (event, apdu) in [(0xFAu8, command), (0xFB, response)] {
            let mut data = vec![0x00, event];
            data.extend_from_slice(&((1 + apdu.len()) as u16).to_be_bytes());
            data.push(pcb);
            data.extend_from_slice(apdu);
            let mut epb = vec![0; 12];
            epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
            epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
            epb.extend_from_slice(&data);
            out.extend(block(6, &epb));
        }
        pcb ^= 1;
    }
    out
}

#[test]
fn a_clear_pin_in_another_tools_trace_is_never_shown() {
    let scratch = Scratch::new("clear-pin");
    let pcap = scratch.file("clear-pin.pcapng");
    let aid = [
        0x73, 0x78, 0x31, 0x2E, 0x73, 0x68, 0x2E, 0xC9, 0xE7, 0xBB, 0xE1, 0xB1, 0xA3, 0xD5, 0xCF,
    ];
    let select = [&[0x00, 0xA4, 0x04, 0x00, 0x0F][..], &aid].concat();
    std::fs::write(
        &pcap,
        clear_pcapng(&[
            (&select, &[0x90, 0x00]),
            // VERIFY 987654: wrong, two tries left.
            (
                &[0x00, 0x20, 0x00, 0x00, 0x03, 0x98, 0x76, 0x54],
                &[0x63, 0xC2],
            ),
            // CHANGE PIN 987654 → 135790.
            (
                &[
                    0x80, 0x5E, 0x01, 0x00, 0x07, 0x98, 0x76, 0x54, 0xFF, 0x13, 0x57, 0x90,
                ],
                &[0x90, 0x00],
            ),
        ]),
    )
    .unwrap();
    let sscard_part = tshark(&pcap, &["-O", "sscard"]);
    for digits in [
        "987654", "98 76 54", "98:76:54", "135790", "13 57 90", "13:57:90",
    ] {
        assert!(!sscard_part.contains(digits), "{digits} in\n{sscard_part}");
    }
    let mut args = vec!["-T", "fields"];
    for f in FIELDS {
        args.extend(["-e", f]);
    }
    assert_eq!(
        tshark(&pcap, &args),
        "\
1\tSELECT\t\tSSSE\t\t\t\t\t\t\t\t\t\t\t\t\t
2\tSELECT\t\tSSSE\t\t\t\t\t\t\t\t\tsuccess\t\t\t\t
3\tVERIFY\t\t\t\t\t\t\tPIN verification\tmasked (3 bytes)\t\t\t\t\t\t\t
4\tVERIFY\t\t\t\t\t\t\t\t\t\t\tverification failed, 2 tries left\t\t\t\t
5\tCHANGE/RELOAD PIN\t\t\t\t\t\t\tchange PIN\tmasked (7 bytes)\t\t\t\t\t\t\t
6\tCHANGE/RELOAD PIN\t\t\t\t\t\t\t\t\t\t\tsuccess\t\t\t\t
"
    );
    assert!(
        sscard_part.contains("    Secret: masked (3 bytes)\n"),
        "{sscard_part}"
    );
}

/// Malformed APDUs and answers (truncated headers, Lc beyond the data, a lone SW1, broken TLVs
/// and FCIs, short PSAM files) decode as far as they go, never into a Lua error.
#[test]
fn malformed_apdus_never_raise_a_lua_error() {
    let scratch = Scratch::new("malformed");
    let pcap = scratch.file("malformed.pcapng");
    let aid = [
        0x73, 0x78, 0x31, 0x2E, 0x73, 0x68, 0x2E, 0xC9, 0xE7, 0xBB, 0xE1, 0xB1, 0xA3, 0xD5, 0xCF,
    ];
    let select = [&[0x00, 0xA4, 0x04, 0x00, 0x0F][..], &aid, &[0x00]].concat();
    std::fs::write(
        &pcap,
        clear_pcapng(&[
            (&[0x00], &[0x90]),
            (&[0x00, 0xB2, 0x01], &[0x6A, 0x83]),
            // Lc of 0x20 over 2 bytes of data; Le of 5 bytes after the data.
            (&[0x00, 0xA4, 0x00, 0x00, 0x20, 0xEF, 0x05], &[0x90, 0x00]),
            (
                &[0x00, 0xA4, 0x00, 0x00, 0x02, 0xEF, 0x05, 1, 2, 3, 4, 5],
                &[0x90, 0x00],
            ),
            // An FCI with a zero-length template, a 6-byte size and a length past its end.
            (
                &select,
                &[
                    0x6F, 0x0C, 0xA5, 0x00, 0x9F, 0x0C, 0x00, 0x80, 0x06, 1, 2, 3, 4, 5, 6, 0xC0,
                    0x09, 0x90, 0x00,
                ],
            ),
            // READ RECORDS of EF05 answered with a TLV whose length runs past the data, then
            // a GBK name cut in the middle of a character.
            (
                &[0x00, 0xB2, 0x01, 0x2D, 0x00],
                &[0x01, 0x10, 0x11, 0x90, 0x00],
            ),
            (
                &[0x00, 0xB2, 0x02, 0x34, 0x00],
                &[0x09, 0x03, 0xD5, 0xC5, 0xC8, 0x90, 0x00],
            ),
            // PSAM EF15 of 3 bytes; DES INIT with 5 factor bytes; DES CRYPT MAC without data.
            (
                &[0x00, 0xB0, 0x95, 0x00, 0x18],
                &[0x11, 0x01, 0x00, 0x90, 0x00],
            ),
            (
                &[0x80, 0x1A, 0x08, 0x01, 0x05, 1, 2, 3, 4, 5],
                &[0x90, 0x00],
            ),
            (&[0x80, 0xFA, 0x05, 0x00], &[0x61, 0x04]),
            (&[0x00, 0xC0, 0x00, 0x00, 0x04], &[0x2A]),
            // An extended APDU: Lc 00 0003, data, Le 0000.
            (
                &[
                    0x04, 0xDC, 0x04, 0x34, 0x00, 0x00, 0x03, 0x0A, 0x01, 0x31, 0x00, 0x00,
                ],
                &[0x90, 0x00],
            ),
        ]),
    )
    .unwrap();
    let tree = tshark(&pcap, &["-V"]);
    assert!(tree.contains("Social security card: "), "{tree}");
    let mut args = vec!["-T", "fields"];
    for f in FIELDS {
        args.extend(["-e", f]);
    }
    let fields = tshark(&pcap, &args);
    assert_eq!(fields.lines().count(), 24, "{fields}");
}

/// A whole personalisation: EXTERNAL AUTHENTICATE with TK, the eight WRITE KEYs (key ids named,
/// key blocks masked), the records written under TK's MAC while the FCI says PERSONALISATION,
/// END PERSONALISATION, then the read-back under the issued card's keys.
#[test]
fn a_personalisation_decodes_in_tshark() {
    let _g = exclusive();
    let scratch = Scratch::new("perso");
    let pcap = scratch.file("perso.pcapng");
    personalise_one_card_traced(&scratch.0, &pcap);
    let out = tshark(
        &pcap,
        &[
            "-Y",
            "sscard.kid || sscard.life_cycle || sscard.command == \"END PERSONALISATION\" || sscard.command == \"UPDATE RECORD\"",
            "-T",
            "fields",
            "-e",
            "sscard.command",
            "-e",
            "sscard.file",
            "-e",
            "sscard.kid",
            "-e",
            "sscard.step",
            "-e",
            "sscard.secret",
            "-e",
            "sscard.life_cycle",
        ],
    );
    tshark(&pcap, &["-V"]);
    // The frames with a key id, a life cycle, END PERSONALISATION or UPDATE RECORD.
    let mut want = vec![
        "SELECT\tSSSE\t\t\t\tPERSONALISATION".to_string(),
        "EXTERNAL AUTHENTICATE\t\t0x00\texternal authentication with TK\tmasked (8 bytes)\t".into(),
    ];
    for (kid, name, len) in [
        ("0x08", "IRK", 28),
        ("0x0a", "RKSSSE", 28),
        ("0x03", "UK_N", 28),
        ("0x21", "RPK", 28),
        ("0x22", "UPK", 28),
        ("0x30", "PIN", 12),
    ] {
        want.push(format!(
            "WRITE KEY\t\t{kid}\tload key {name} (encrypted under TK)\tmasked ({len} bytes)\t"
        ));
    }
    for (kid, name) in [("0x11", "EAK_L"), ("0x12", "UK_L")] {
        want.push(format!(
            "WRITE KEY\t\t{kid}\tload key {name} (encrypted under TK)\tmasked (28 bytes)\t"
        ));
    }
    want.push(
        "EXTERNAL AUTHENTICATE\t\t0x00\texternal authentication with TK\tmasked (8 bytes)\t".into(),
    );
    for (file, records) in [("EF05", 4), ("EF06", 6), ("EF07", 3)] {
        for _ in 0..records {
            want.push(format!(
                "UPDATE RECORD\t{file}\t\tline-protected write, MAC under TK\t\t"
            ));
            want.push(format!("UPDATE RECORD\t{file}\t\t\t\t"));
        }
    }
    want.push("END PERSONALISATION\t\t\tend of personalisation, MAC under TK\t\t".into());
    want.push("END PERSONALISATION\t\t\t\t\t".into());
    want.push(
        "INTERNAL AUTHENTICATE\t\t0x08\tinternal authentication: the card proves it is genuine\t\t"
            .into(),
    );
    want.push(
        "EXTERNAL AUTHENTICATE\t\t0x0a\texternal authentication with RKSSSE\tmasked (8 bytes)\t"
            .into(),
    );
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got, want);
}
