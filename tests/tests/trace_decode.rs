//! `sscard trace decode`: the pcapng and JSON trace of `info` through pcscd decode to the same
//! lines, byte for byte but for the random values (checked for shape); another tool's ISO 14443
//! pcap decodes, its clear PIN masked; malformed files give their exact error. And `read`
//! shows records decoded through the file table (`--raw` for hex).

use sscard_e2e::*;
use std::path::PathBuf;

/// A directory of this test process, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("sscard-trace-decode-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `line` is `pattern` where `<Hn>` stands for exactly n upper-case hex digits (a
/// random value: the host's random, the card's challenge, a cryptogram over them).
fn matches(line: &str, pattern: &str) -> bool {
    let (mut l, mut p) = (line, pattern);
    loop {
        match p.find("<H") {
            None => return l == p,
            Some(i) => {
                if !l.starts_with(&p[..i]) {
                    return false;
                }
                l = &l[i..];
                let rest = &p[i + 2..];
                let end = rest.find('>').expect("a closed placeholder");
                let n: usize = rest[..end].parse().expect("a length");
                if l.len() < n
                    || !l[..n]
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
                {
                    return false;
                }
                l = &l[n..];
                p = &rest[end + 1..];
            }
        }
    }
}

fn assert_lines(got: &str, expected: &[String], what: &str) {
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{what}:\n{got}");
    for (l, e) in lines.iter().zip(expected) {
        assert!(matches(l, e), "{what}: line\n{l}\ndoes not match\n{e}");
    }
}

const EF05: &str = "card identification code = 110100D15600000599110145000000A1  card type = 3  specification version = {V}  initialisation organisation = 110100000000000000000001  issue date = 2024-01-01  expiry date = 2034-01-01  card number = A12345674  9000 success";
const EF06: &str = "card  READ RECORDS EF06 #1..  social security number = 11010519491231002X  name = 张三  name extension = (empty)  gender = 2  ethnic group = 01  birthplace = 110105  birth date = 1949-12-31  9000 success";

/// The decoded lines of `sscard info` with a city PSAM: 3DES opens EF06 freely, SM4 after
/// external authentication with RKSSSE.
fn expected_info(alg: &str) -> Vec<String> {
    let (id, name, version, block) = match alg {
        "3des" => ("01", "3DES", "2.00", 16),
        _ => ("03", "SM4", "3.00", 32),
    };
    let mut lines = vec![
        "psam  SELECT DF01  9000 success".to_string(),
        format!("psam  READ BINARY EF15  serial = 11010000000000000001  version = 01  algorithm = {id} ({name})  region = 110100  level = 2 (city)  start date = 2024-01-01  expiry date = 2034-01-01  9000 success"),
        "psam  READ BINARY EF16  terminal number = 110100000001  9000 success".to_string(),
        format!("card  SELECT SSSE  DF name = SSSE  algorithm = {id} ({name})  life cycle = 02 (ISSUED)  9000 success"),
        format!("card  READ RECORDS EF05 #1..  {}", EF05.replace("{V}", version)),
        format!("card  INTERNAL AUTHENTICATE  (internal authentication: the card proves it is genuine)  key = IRK (08)  random = <H16>  cryptogram = <H{block}>  9000 success"),
        "psam  DES INIT IRK (08)  key index = 01  card diversifier = 99110145000000A1  9000 success".to_string(),
    ];
    let stars = "*".repeat(block);
    if alg == "3des" {
        lines.push("psam  DES CRYPT  (the card's internal-authentication cryptogram, recomputed under IRK)  input = <H16>  6108 8 response bytes available (GET RESPONSE)".into());
        lines.push(format!(
            "psam  GET RESPONSE  (the DES CRYPT result)  result = {stars}  9000 success"
        ));
    } else {
        lines.push("psam  DES CRYPT  (the card's internal-authentication cryptogram, recomputed under IRK)  input = <H16>0000000000000000  6110 16 response bytes available (GET RESPONSE)".into());
        lines.push(format!(
            "psam  GET RESPONSE  (the DES CRYPT result)  result = {stars}  9000 success"
        ));
        lines.push("card  GET CHALLENGE  (card challenge for external authentication)  challenge = <H16>  9000 success".into());
        lines.push("psam  DES INIT RKSSSE (0A)  key index = 01  card diversifier = 99110145000000A1  9000 success".into());
        lines.push("psam  DES CRYPT  (the external-authentication cryptogram over the card's challenge under RKSSSE)  input = <H16>0000000000000000  6110 16 response bytes available (GET RESPONSE)".into());
        lines.push(format!(
            "psam  GET RESPONSE  (the DES CRYPT result)  result = {stars}  9000 success"
        ));
        lines.push(format!("card  EXTERNAL AUTHENTICATE  (external authentication: the terminal's cryptogram over the card's challenge)  key = RKSSSE (0A)  cryptogram = {stars}  9000 success"));
    }
    lines.push(EF06.to_string());
    lines
}

#[test]
fn info_traces_decode_alike_from_pcapng_json_and_stdin_for_3des_and_sm4() {
    let _g = exclusive();
    for alg in ["3des", "sm4"] {
        let dir = TempDir::new(alg);
        let (pcap, jsonl) = (dir.path("info.pcapng"), dir.path("info.jsonl"));
        {
            let _m = ModelServer::start(&["--alg", alg], &[READER_0, READER_1]);
            let o = sscard(&[
                "info",
                "--reader",
                READER_0,
                "--psam-reader",
                READER_1,
                "--pcap",
                &pcap,
                "--trace-json",
                &jsonl,
            ]);
            assert!(o.status.success(), "{alg}: {}", stderr(&o));
        }
        let expected = expected_info(alg);
        let from_pcap = sscard(&["trace", "decode", &pcap]);
        assert!(from_pcap.status.success(), "{}", stderr(&from_pcap));
        assert_lines(&stdout(&from_pcap), &expected, &format!("{alg} pcapng"));
        let from_json = sscard(&["trace", "decode", &jsonl]);
        assert!(from_json.status.success(), "{}", stderr(&from_json));
        // The two files of one run decode to the same lines, random values included.
        assert_eq!(stdout(&from_pcap), stdout(&from_json), "{alg}");
        let json_text = std::fs::read_to_string(&jsonl).unwrap();
        let from_stdin = sscard_env(&["trace", "decode", "-"], &[], Some(&json_text));
        assert!(from_stdin.status.success(), "{}", stderr(&from_stdin));
        assert_eq!(stdout(&from_stdin), stdout(&from_json), "{alg} stdin");
        // --json: one object per pair, its text the line.
        let as_json = sscard(&["trace", "decode", &pcap, "--json"]);
        let objects: Vec<serde_json::Value> = stdout(&as_json)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(objects.len(), expected.len(), "{alg}");
        let texts: Vec<&str> = objects
            .iter()
            .map(|o| o["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts.join("\n") + "\n", stdout(&from_pcap), "{alg}");
        assert_eq!(objects[0]["reader"], READER_1, "{alg}");
        assert_eq!(objects[3]["reader"], READER_0, "{alg}");
        assert_eq!(
            objects[3]["fields"][1],
            serde_json::json!({ "name": "algorithm", "value": format!("{} ({})", if alg == "sm4" { "03" } else { "01" }, if alg == "sm4" { "SM4" } else { "3DES" }) }),
            "{alg}"
        );
    }
}

/// A classic pcap (big-endian) of another tool: LINKTYPE_ISO_14443, frames with their CRC
/// (events `FE`/`FF`), a field-on event, and a clear PIN.
fn foreign_pcap(apdus: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(0xA1B2_C3D4u32.to_be_bytes());
    b.extend(2u16.to_be_bytes());
    b.extend(4u16.to_be_bytes());
    b.extend([0; 8]);
    b.extend(65535u32.to_be_bytes());
    b.extend(264u32.to_be_bytes());
    let mut record = |event: u8, frame: &[u8]| {
        let mut data = vec![0, event];
        data.extend((frame.len() as u16).to_be_bytes());
        data.extend(frame);
        b.extend([0; 8]);
        b.extend((data.len() as u32).to_be_bytes());
        b.extend((data.len() as u32).to_be_bytes());
        b.extend(data);
    };
    record(0xFC, &[]);
    for (i, (c, r)) in apdus.iter().enumerate() {
        let pcb = 0x02 | (i as u8 & 1);
        for (event, hex) in [(0xFE, c), (0xFF, r)] {
            let mut frame = vec![pcb];
            frame.extend(sscard_core::hexfmt::parse_hex(hex).unwrap());
            frame.extend([0xAB, 0xCD]);
            record(event, &frame);
        }
    }
    b
}

#[test]
fn another_tools_iso14443_pcap_decodes_with_its_clear_pin_masked() {
    let dir = TempDir::new("foreign");
    let pcap = dir.path("foreign.pcap");
    std::fs::write(
        &pcap,
        foreign_pcap(&[
            ("00A404000F7378312E73682EC9E7BBE1B1A3D5CF", "9000"),
            ("0020000003123456", "9000"),
            ("00B2073400", "0D04194912319000"),
            ("00B2092C", "6A83"),
        ]),
    )
    .unwrap();
    let o = sscard(&["trace", "decode", &pcap]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "card  SELECT SSSE  9000 success\n\
         card  VERIFY  PIN = ******  9000 success\n\
         card  READ RECORD EF06 #7  birth date = 1949-12-31  9000 success\n\
         card  READ RECORD EF05 #9  6A83 record not found\n"
    );
    assert!(!stdout(&o).contains("123456"));
    let o = sscard(&["trace", "decode", &pcap, "--json"]);
    assert!(!stdout(&o).contains("123456"), "{}", stdout(&o));
}

/// A usbmon capture (classic pcap in the writer's byte order, big- or little-endian, with the
/// 48-byte header of link type 189 or the 64-byte one of 220) of a CCID reader, bus 3 device 5:
/// the configuration descriptor (so that Wireshark knows endpoints 02 and 82 as CCID), a
/// power-on and its ATR, then for each APDU the `XfrBlock` submission, its completion, the
/// bulk-in submission and the `DataBlock` completion, as libccid and the kernel make them.
fn usbmon_pcap(be: bool, linktype: u32, apdus: &[(&str, &str)]) -> Vec<u8> {
    let header = if linktype == 220 { 64 } else { 48 };
    let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let packet = |event: u8, transfer: u8, endpoint: u8, setup: Option<[u8; 8]>, data: &[u8]| {
        let mut p = Vec::new();
        p.extend(if be {
            (0xFFFF_8880_0000_0000u64 | u64::from(endpoint)).to_be_bytes()
        } else {
            (0xFFFF_8880_0000_0000u64 | u64::from(endpoint)).to_le_bytes()
        });
        p.extend([event, transfer, endpoint, 5]);
        p.extend(u16b(3));
        p.push(if setup.is_some() { 0 } else { b'-' });
        p.push(if data.is_empty() { b'<' } else { 0 });
        p.extend(if be {
            1_700_000_000i64.to_be_bytes()
        } else {
            1_700_000_000i64.to_le_bytes()
        });
        p.extend(u32b(0));
        p.extend(u32b(if event == b'S' { (-115i32) as u32 } else { 0 }));
        p.extend(u32b(data.len() as u32));
        p.extend(u32b(data.len() as u32));
        p.extend(setup.unwrap_or_default());
        p.resize(header, 0);
        p.extend(data);
        p
    };
    let ccid = |kind: u8, seq: u8, data: &[u8]| {
        let mut m = vec![kind];
        m.extend((data.len() as u32).to_le_bytes());
        m.extend([0, seq, if kind == 0x6F { 4 } else { 0 }, 0, 0]);
        m.extend(data);
        m
    };
    // Configuration: one interface of class 0B (smart card), its CCID class descriptor, a
    // bulk-out, a bulk-in and an interrupt endpoint.
    let mut class = vec![
        0x36, 0x21, 0x10, 0x01, 0x00, 0x07, 0x03, 0, 0, 0, 0xA0, 0x0F, 0, 0,
    ];
    class.extend([
        0xA0, 0x0F, 0, 0, 0, 0x2A, 0x55, 0, 0, 0x10, 0xE1, 0, 0, 0, 0, 0, 0, 0,
    ]);
    class.extend([
        0, 0, 0, 0, 0, 0, 0, 0xFE, 0, 0x04, 0, 0x0F, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ]);
    class.resize(0x36, 0);
    let mut config = vec![
        9, 2, 0, 0, 1, 1, 0, 0x80, 0x32, 9, 4, 0, 0, 3, 0x0B, 0, 0, 0,
    ];
    config.extend(class);
    config.extend([
        7, 5, 0x02, 2, 0x40, 0, 0, 7, 5, 0x82, 2, 0x40, 0, 0, 7, 5, 0x83, 3, 8, 0, 0x18,
    ]);
    let total = (config.len() as u16).to_le_bytes();
    config[2..4].copy_from_slice(&total);
    let setup = [0x80, 6, 0, 2, 0, 0, total[0], total[1]];
    let mut packets = vec![
        packet(b'S', 2, 0x80, Some(setup), &[]),
        packet(b'C', 2, 0x80, None, &config),
        packet(b'S', 3, 0x02, None, &ccid(0x62, 0, &[])),
        packet(b'S', 3, 0x82, None, &[]),
        packet(
            b'C',
            3,
            0x82,
            None,
            &ccid(
                0x80,
                0,
                &[0x3B, 0x68, 0, 0, 0, 0x73, 0xC8, 0x40, 0x13, 0, 0x90, 0],
            ),
        ),
    ];
    for (i, (c, r)) in apdus.iter().enumerate() {
        let seq = i as u8 + 1;
        let c = sscard_core::hexfmt::parse_hex(c).unwrap();
        let r = sscard_core::hexfmt::parse_hex(r).unwrap();
        packets.push(packet(b'S', 3, 0x02, None, &ccid(0x6F, seq, &c)));
        packets.push(packet(b'C', 3, 0x02, None, &[]));
        packets.push(packet(b'S', 3, 0x82, None, &[]));
        packets.push(packet(b'C', 3, 0x82, None, &ccid(0x80, seq, &r)));
    }
    let mut b = Vec::new();
    b.extend(u32b(0xA1B2_C3D4));
    b.extend(u16b(2));
    b.extend(u16b(4));
    b.extend([0; 8]);
    b.extend(u32b(262_144));
    b.extend(u32b(linktype));
    for p in packets {
        b.extend(u32b(1_700_000_000));
        b.extend(u32b(0));
        b.extend(u32b(p.len() as u32));
        b.extend(u32b(p.len() as u32));
        b.extend(p);
    }
    b
}

/// The APDUs of the foreign captures: SELECT SSSE, a VERIFY with a clear PIN, READ RECORD EF06
/// #7 and a record EF05 lacks.
const FOREIGN: [(&str, &str); 4] = [
    ("00A404000F7378312E73682EC9E7BBE1B1A3D5CF", "9000"),
    ("0020000003123456", "9000"),
    ("00B2073400", "0D04194912319000"),
    ("00B2092C00", "6A83"),
];

#[test]
fn a_usbmon_ccid_capture_decodes_and_tshark_reads_it_as_iso7816() {
    let dir = TempDir::new("usbmon");
    for (be, linktype) in [(false, 189), (true, 189), (false, 220), (true, 220)] {
        let pcap = dir.path(&format!("usbmon-{linktype}-{be}.pcap"));
        std::fs::write(&pcap, usbmon_pcap(be, linktype, &FOREIGN)).unwrap();
        let o = sscard(&["trace", "decode", &pcap]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            stdout(&o),
            "card  SELECT SSSE  9000 success\n\
             card  VERIFY  PIN = ******  9000 success\n\
             card  READ RECORD EF06 #7  birth date = 1949-12-31  9000 success\n\
             card  READ RECORD EF05 #9  6A83 record not found\n",
            "{pcap}"
        );
        let o = sscard(&["trace", "decode", &pcap, "--json"]);
        assert!(!stdout(&o).contains("123456"), "{}", stdout(&o));
        let first: serde_json::Value =
            serde_json::from_str(stdout(&o).lines().next().unwrap_or_default()).unwrap();
        assert_eq!(
            first["reader"],
            serde_json::json!("USB bus 3 device 5 slot 0"),
            "{}",
            stdout(&o)
        );
        // Wireshark, told that the CCID payload is ISO 7816 (its default shows it as data),
        // finds the same APDUs in the same file: it is real usbmon.
        let t = std::process::Command::new("tshark")
            .args([
                "-r",
                &pcap,
                "-d",
                "usbccid.subdissector,iso7816",
                "-Y",
                "iso7816",
            ])
            .args([
                "-T",
                "fields",
                "-e",
                "usbccid.bMessageType",
                "-e",
                "iso7816.apdu.ins",
            ])
            .args(["-e", "iso7816.apdu.sw1", "-e", "iso7816.apdu.sw2"])
            .args(["-e", "iso7816.atr.init_char"])
            .output()
            .expect("tshark runs (scripts/setup.sh installs it)");
        assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
        assert_eq!(
            String::from_utf8_lossy(&t.stdout),
            // The power-on's answer (the ATR, which sscard skips), then the four pairs.
            "0x80\t\t\t\t0x3b\n\
             0x6f\t0xa4\t\t\t\n0x80\t\t0x90\t0x00\t\n\
             0x6f\t0x20\t\t\t\n0x80\t\t0x90\t0x00\t\n\
             0x6f\t0xb2\t\t\t\n0x80\t\t0x90\t0x00\t\n\
             0x6f\t0xb2\t\t\t\n0x80\t\t0x6a\t0x83\t\n",
            "{pcap}"
        );
    }
}

/// A USBPcap capture (Windows, link type 249, classic pcap): bus 1 device 4, for each APDU the
/// `XfrBlock` going down to the reader's bulk-out endpoint 02, its completion, the bulk-in
/// request and its completion with the `DataBlock`; each request and completion share an IRP.
fn usbpcap_pcap(apdus: &[(&str, &str)]) -> Vec<u8> {
    let packet = |completion: bool, endpoint: u8, irp: u64, data: &[u8]| {
        let mut p = Vec::new();
        p.extend(27u16.to_le_bytes());
        p.extend(irp.to_le_bytes());
        p.extend(0u32.to_le_bytes()); // USBD_STATUS_SUCCESS
        p.extend(9u16.to_le_bytes()); // URB_FUNCTION_BULK_OR_INTERRUPT_TRANSFER
        p.push(u8::from(completion));
        p.extend(1u16.to_le_bytes());
        p.extend(4u16.to_le_bytes());
        p.extend([endpoint, 3]);
        p.extend((data.len() as u32).to_le_bytes());
        p.extend(data);
        p
    };
    let ccid = |kind: u8, seq: u8, hex: &str| {
        let data = sscard_core::hexfmt::parse_hex(hex).unwrap();
        let mut m = vec![kind];
        m.extend((data.len() as u32).to_le_bytes());
        m.extend([0, seq, if kind == 0x6F { 4 } else { 0 }, 0, 0]);
        m.extend(data);
        m
    };
    let mut b = Vec::new();
    b.extend(0xA1B2_C3D4u32.to_le_bytes());
    b.extend([2, 0, 4, 0]);
    b.extend([0; 8]);
    b.extend(65_535u32.to_le_bytes());
    b.extend(249u32.to_le_bytes());
    for (i, (c, r)) in apdus.iter().enumerate() {
        let (seq, irp) = (i as u8, 0x1000 + 2 * i as u64);
        for p in [
            packet(false, 0x02, irp, &ccid(0x6F, seq, c)),
            packet(true, 0x02, irp, &[]),
            packet(false, 0x82, irp + 1, &[]),
            packet(true, 0x82, irp + 1, &ccid(0x80, seq, r)),
        ] {
            b.extend(1_700_000_000u32.to_le_bytes());
            b.extend(0u32.to_le_bytes());
            b.extend((p.len() as u32).to_le_bytes());
            b.extend((p.len() as u32).to_le_bytes());
            b.extend(p);
        }
    }
    b
}

#[test]
fn a_usbpcap_ccid_capture_decodes_and_tshark_reads_it_as_iso7816() {
    let dir = TempDir::new("usbpcap");
    let pcap = dir.path("usbpcap.pcap");
    std::fs::write(&pcap, usbpcap_pcap(&FOREIGN)).unwrap();
    let o = sscard(&["trace", "decode", &pcap]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "card  SELECT SSSE  9000 success\n\
         card  VERIFY  PIN = ******  9000 success\n\
         card  READ RECORD EF06 #7  birth date = 1949-12-31  9000 success\n\
         card  READ RECORD EF05 #9  6A83 record not found\n"
    );
    // No configuration descriptor in this capture: tshark is told the device is CCID.
    let t = std::process::Command::new("tshark")
        .args(["-r", &pcap, "-d", "usb.device==0x00010004,usbccid"])
        .args(["-d", "usbccid.subdissector,iso7816", "-Y", "iso7816"])
        .args([
            "-T",
            "fields",
            "-e",
            "iso7816.apdu.ins",
            "-e",
            "iso7816.apdu.sw1",
        ])
        .output()
        .expect("tshark runs (scripts/setup.sh installs it)");
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    assert_eq!(
        String::from_utf8_lossy(&t.stdout),
        "0xa4\t\n\t0x90\n0x20\t\n\t0x90\n0xb2\t\n\t0x90\n0xb2\t\n\t0x6a\n"
    );
}

/// A T=1 block (NAD 00) of `pcb` around the APDU `inf`, with its LRC, in hex.
fn t1_block(pcb: u8, inf: &str) -> String {
    let inf = sscard_core::hexfmt::parse_hex(inf).unwrap();
    let mut b = vec![0, pcb, inf.len() as u8];
    b.extend(inf);
    b.push(b.iter().fold(0, |a, x| a ^ x));
    sscard_core::hexfmt::to_hex(&b)
}

/// A reader exchanging T=1 blocks (TPDU level) carries blocks, not APDUs: the APDUs are taken
/// out of the I-blocks (the VERIFY's PIN masked), a chained answer joined, the IFS and WTX
/// supervisory blocks and the receive-ready acknowledgement skipped. A message that is neither
/// an APDU nor a block gives the decoder's malformed line.
#[test]
fn a_tpdu_level_ccid_capture_decodes_its_apdus() {
    let dir = TempDir::new("tpdu");
    let pcap = dir.path("tpdu.pcap");
    let blocks = [
        (t1_block(0xC1, "FE"), t1_block(0xE1, "FE")),
        (t1_block(0x00, "00B2073400"), t1_block(0x20, "0D0419")),
        (t1_block(0x90, ""), t1_block(0x40, "4912319000")),
        (t1_block(0x40, "0020000003123456"), t1_block(0xC3, "01")),
        (t1_block(0xE3, "01"), t1_block(0x00, "63C2")),
    ];
    let mut apdus: Vec<(&str, &str)> = blocks
        .iter()
        .map(|(c, r)| (c.as_str(), r.as_str()))
        .collect();
    apdus.push(("00000500B2AA", "6A83"));
    std::fs::write(&pcap, usbmon_pcap(false, 189, &apdus)).unwrap();
    let o = sscard(&["trace", "decode", &pcap]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "card  READ RECORD EF06 #7  birth date = 1949-12-31  9000 success\n\
         card  VERIFY  PIN = ******  63C2 verification failed, 2 tries left\n\
         card  command  header = 00000500  body = B2AA  malformed: Lc says 178 data bytes but 1 follow  6A83 record not found\n"
    );
}

#[test]
fn malformed_trace_files_give_the_exact_error() {
    let dir = TempDir::new("malformed");
    let garbage = dir.path("garbage.bin");
    std::fs::write(&garbage, b"GIF89a\x01\x00").unwrap();
    let o = sscard(&["trace", "decode", &garbage]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!("sscard: error: {garbage}: not a trace sscard reads (it starts 4749463839610100): give a pcapng or pcap file, or sscard's JSON lines (--trace-json)\n")
    );
    // A pcapng cut inside its first packet block.
    let mut cut = foreign_pcap(&[("00A4040000", "9000")]);
    cut.truncate(24 + 16 + 3);
    let truncated = dir.path("cut.pcap");
    std::fs::write(&truncated, &cut).unwrap();
    let o = sscard(&["trace", "decode", &truncated, "--json"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        json(&o),
        serde_json::json!({
            "error": format!("{truncated}: pcap at offset 24: a record longer than the rest of the file"),
            "code": -23,
            "exit": 2
        })
    );
    let bad_json = dir.path("bad.jsonl");
    std::fs::write(
        &bad_json,
        "{\"role\":\"card\",\"command\":\"00B2\",\"response\":\"\",\"sw\":\"9\"}\n",
    )
    .unwrap();
    let o = sscard(&["trace", "decode", &bad_json]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!("sscard: error: {bad_json}: JSON trace line 1: \"sw\" is not hex (with ** for masked bytes)\n")
    );
    let missing = dir.path("missing.pcap");
    let o = sscard(&["trace", "decode", &missing]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!("sscard: error: {missing}: No such file or directory (os error 2)\n")
    );
}

#[test]
fn read_and_info_decode_by_default_and_raw_gives_hex() {
    let _g = exclusive();
    let _m = ModelServer::start(&[], &[READER_0, READER_1]);
    let base = ["--reader", READER_0, "--psam-reader", READER_1];
    let run = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend_from_slice(&base);
        sscard(&a)
    };
    let o = run(&["read", "EF06"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "EF06 #1  social security number = 11010519491231002X\n\
         EF06 #2  name = 张三\n\
         EF06 #3  name extension = (empty)\n\
         EF06 #4  gender = 2\n\
         EF06 #5  ethnic group = 01\n\
         EF06 #6  birthplace = 110105\n\
         EF06 #7  birth date = 1949-12-31\n"
    );
    // info decodes; --raw shows the records it read as the card answered them.
    let o = run(&["info", "--raw"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "EF05  01 10 110100D15600000599110145000000A1\n\
         EF05  02 01 33\n\
         EF05  03 04 322E3030\n\
         EF05  04 0C 110100000000000000000001\n\
         EF05  05 04 20240101\n\
         EF05  06 04 20340101\n\
         EF05  07 09 413132333435363734\n\
         EF06  08 12 313130313035313934393132333130303258\n\
         EF06  09 1E D5C5C8FD0000000000000000000000000000000000000000000000000000\n\
         EF06  4E 14 0000000000000000000000000000000000000000\n\
         EF06  0A 01 32\n\
         EF06  0B 01 01\n\
         EF06  0C 03 110105\n\
         EF06  0D 04 19491231\n"
    );
    let o = run(&["read", "EF05", "--record", "5", "--raw"]);
    assert_eq!(stdout(&o), "05 04 20240101\n", "{}", stderr(&o));
    let o = run(&["read", "EF05", "--record", "5", "--json"]);
    assert_eq!(
        json(&o),
        serde_json::json!({
            "file": "EF05",
            "records": [{ "tag": "05", "value": "20240101" }],
            "binary": "",
            "fields": [{ "number": 5, "tag": "05", "name": "issue date", "key": "issue_date", "value": "2024-01-01" }]
        })
    );
}

#[test]
fn script_run_shows_the_decoded_exchange_of_a_failed_check() {
    let dir = TempDir::new("script");
    let script = dir.path("fail.apdu");
    std::fs::write(
        &script,
        "test \"gender\"\n  00A404000F7378312E73682EC9E7BBE1B1A3D5CF -> 9000\n  00B2043400 -> 9000 0A0131\ntest \"pin\"\n  0020000003123456 -> 63C2\ntest \"passes\"\n  00A404000F7378312E73682EC9E7BBE1B1A3D5CF -> 9000\n",
    )
    .unwrap();
    let o = sscard(&["script", "run", "--model", &script]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..4],
        [
            format!("FAIL {script} › gender: {script}:3: expected data 0A0131, got 0A0132").as_str(),
            "     card  READ RECORD EF06 #4  gender = 2  9000 success",
            format!("FAIL {script} › pin: {script}:5: expected 63C2, got 6A88 (referenced data or key not found)").as_str(),
            // The PIN the script sends in clear is masked in the decoded line too.
            "     card  VERIFY  PIN = ******  6A88 referenced data or key not found",
        ]
    );
    assert!(
        lines[4].starts_with("1 passed, 2 failed, 0 skipped"),
        "{out}"
    );
    let o = sscard(&["script", "run", "--model", &script, "--raw"]);
    assert_eq!(stdout(&o).lines().count(), 3, "{}", stdout(&o));
    let o = sscard(&["--json", "script", "run", "--model", &script]);
    let report = json(&o);
    let cases = &report["files"][0]["cases"];
    assert_eq!(
        cases[0]["exchange"],
        "card  READ RECORD EF06 #4  gender = 2  9000 success"
    );
    assert_eq!(cases[2].get("exchange"), None);
    assert!(!stdout(&o).contains("123456"));
}
