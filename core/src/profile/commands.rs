//! Every APDU of PROFILE.md, built in one place. Each comes as an [`Apdu`]: the command, its
//! name, whether sending it twice differs from sending it once ([`Idempotence`]: commands that
//! change the card are never resent automatically), and which of its data is secret in traces
//! ([`Secrecy`]). Line-protected commands are built in two steps: [`LineProtected::mac_input`]
//! is what the key source MACs, [`LineProtected::with_mac`] the command that carries the MAC.
//!
//! [`describe`] classifies any command bytes (a raw APDU typed into `send` or a script) the same
//! way, so a VERIFY is masked and counted as changing the card whoever sends it.

use super::{fid, files::FileDef, Kid, SSSE_AID};
use crate::apdu::Command;
use zeroize::{Zeroize, Zeroizing};

/// Whether sending a command twice is the same as sending it once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Idempotence {
    /// Reads, selections, challenges, internal authentication, PSAM cryptography: only volatile
    /// state changes, so a flow may run again after a reset.
    Idempotent,
    /// Writes, key loading, and every check under a try counter (VERIFY, PIN changes, external
    /// authentication): never resent automatically.
    ChangesCard,
}

/// Which parts of an exchange are secret (PINs, key material, cryptograms).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Secrecy {
    pub command_data: bool,
    pub response_data: bool,
}

impl Secrecy {
    pub const PUBLIC: Self = Self {
        command_data: false,
        response_data: false,
    };
    pub const COMMAND_DATA: Self = Self {
        command_data: true,
        response_data: false,
    };
    pub const RESPONSE_DATA: Self = Self {
        command_data: false,
        response_data: true,
    };

    /// Secret where either is.
    pub fn union(self, other: Self) -> Self {
        Self {
            command_data: self.command_data || other.command_data,
            response_data: self.response_data || other.response_data,
        }
    }
}

/// A command of the profile with what the transport needs to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Apdu {
    /// The command's name for messages and traces (`READ RECORDS`).
    pub name: &'static str,
    pub command: Command,
    pub idempotence: Idempotence,
    pub secrecy: Secrecy,
}

/// What [`describe`] knows of any command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandInfo {
    pub name: &'static str,
    pub idempotence: Idempotence,
    pub secrecy: Secrecy,
}

/// Why a command cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Lc of a line-protected command counts the 4 MAC bytes: a short APDU carries at most
    /// 251 data bytes with them.
    #[error("{name}: {len} data bytes and a 4-byte MAC do not fit one short APDU (at most 251)")]
    TooLongForMac { name: &'static str, len: usize },
}

use Idempotence::{ChangesCard, Idempotent};

/// The name, effect and secrecy of a command by its class and instruction: the commands that
/// carry a PIN, key material or a cryptogram have secret data whoever sends them (ISO 7816-4's
/// VERIFY `20`/`21`, CHANGE REFERENCE DATA `24`/`25`, DISABLE and ENABLE VERIFICATION
/// REQUIREMENT `26`/`28` and RESET RETRY COUNTER `2C`/`2D` whatever the class), and the PSAM's
/// DES CRYPT answers a cryptogram or a MAC under a card key (secret response data), whether a
/// flow or a raw `send` sends it; an instruction the profile does not know is taken to change
/// the card.
pub fn describe(cla: u8, ins: u8) -> CommandInfo {
    let proprietary = cla & 0x80 != 0;
    let (name, idempotence, secrecy) = match (proprietary, ins) {
        (_, 0xA4) => ("SELECT", Idempotent, Secrecy::PUBLIC),
        (_, 0xB2) => ("READ RECORD", Idempotent, Secrecy::PUBLIC),
        (_, 0xB0) => ("READ BINARY", Idempotent, Secrecy::PUBLIC),
        (_, 0xC0) => ("GET RESPONSE", Idempotent, Secrecy::PUBLIC),
        (false, 0x84) => ("GET CHALLENGE", Idempotent, Secrecy::PUBLIC),
        (false, 0x88) => ("INTERNAL AUTHENTICATE", Idempotent, Secrecy::PUBLIC),
        (_, 0xDC) => ("UPDATE RECORD", ChangesCard, Secrecy::PUBLIC),
        (_, 0xD6) => ("UPDATE BINARY", ChangesCard, Secrecy::PUBLIC),
        (_, 0x20 | 0x21) => ("VERIFY", ChangesCard, Secrecy::COMMAND_DATA),
        (true, 0x24) => ("UNBLOCK PIN", ChangesCard, Secrecy::COMMAND_DATA),
        // ISO 7816-4's other reference-data commands: a PIN, a PUK or a new PIN in the data,
        // whatever the class.
        (false, 0x24) | (_, 0x25) => ("CHANGE REFERENCE DATA", ChangesCard, Secrecy::COMMAND_DATA),
        (_, 0x2C | 0x2D) => ("RESET RETRY COUNTER", ChangesCard, Secrecy::COMMAND_DATA),
        (_, 0x26) => (
            "DISABLE VERIFICATION REQUIREMENT",
            ChangesCard,
            Secrecy::COMMAND_DATA,
        ),
        (_, 0x28) => (
            "ENABLE VERIFICATION REQUIREMENT",
            ChangesCard,
            Secrecy::COMMAND_DATA,
        ),
        (_, 0x5E) => ("CHANGE/RELOAD PIN", ChangesCard, Secrecy::COMMAND_DATA),
        (_, 0x82) => ("EXTERNAL AUTHENTICATE", ChangesCard, Secrecy::COMMAND_DATA),
        (_, 0xD4) => ("WRITE KEY", ChangesCard, Secrecy::COMMAND_DATA),
        (_, 0xEE) => ("END PERSONALISATION", ChangesCard, Secrecy::PUBLIC),
        (true, 0x1A) => ("DES INIT", Idempotent, Secrecy::PUBLIC),
        (true, 0xFA) => ("DES CRYPT", Idempotent, Secrecy::RESPONSE_DATA),
        _ => ("command", ChangesCard, Secrecy::PUBLIC),
    };
    CommandInfo {
        name,
        idempotence,
        secrecy,
    }
}

/// [`describe`] of encoded command bytes (fewer than two bytes: an unknown command).
pub fn describe_bytes(bytes: &[u8]) -> CommandInfo {
    match bytes {
        [cla, ins, ..] => describe(*cla, *ins),
        _ => describe(0xFF, 0xFF),
    }
}

fn apdu(name: &'static str, command: Command) -> Apdu {
    let info = describe(command.cla, command.ins);
    Apdu {
        name,
        command,
        idempotence: info.idempotence,
        secrecy: info.secrecy,
    }
}

/// SELECT of the SSSE application with Le `00`: the FCI gives the algorithm and life cycle.
pub fn select_ssse() -> Apdu {
    apdu(
        "SELECT SSSE",
        Command::new(0x00, 0xA4, 0x04, 0x00)
            .with_data(SSSE_AID)
            .with_le(256),
    )
}

/// SELECT of the SSSE application without FCI (back from DF01).
pub fn select_ssse_no_fci() -> Apdu {
    apdu(
        "SELECT SSSE",
        Command::new(0x00, 0xA4, 0x04, 0x00).with_data(SSSE_AID),
    )
}

/// SELECT of DF01: the SSC's local extension, or the PSAM's security application.
pub fn select_df01() -> Apdu {
    apdu(
        "SELECT DF01",
        Command::new(0x00, 0xA4, 0x00, 0x00).with_data(fid::DF01.to_be_bytes()),
    )
}

/// SELECT of an EF of the current DF by its FID (`00A40000 02 <FID>`), no FCP asked.
pub fn select_ef(file: &FileDef) -> Apdu {
    apdu(
        "SELECT",
        Command::new(0x00, 0xA4, 0x00, 0x00).with_data(file.fid.to_be_bytes()),
    )
}

/// READ RECORD by identifier: the first record of `file` whose tag is `tag`, Le `00`.
pub fn read_record_by_tag(file: &FileDef, tag: u8) -> Apdu {
    apdu(
        "READ RECORD",
        Command::new(0x00, 0xB2, tag, file.sfi << 3).with_le(256),
    )
}

/// READ RECORD by number in `file` (SFI addressing), Le `00`.
pub fn read_record(file: &FileDef, number: u8) -> Apdu {
    apdu(
        "READ RECORD",
        Command::new(0x00, 0xB2, number, file.sfi << 3 | 0x04).with_le(256),
    )
}

/// READ RECORDS: records `first` to the last of `file`, concatenated, Le `00`.
pub fn read_records_from(file: &FileDef, first: u8) -> Apdu {
    apdu(
        "READ RECORDS",
        Command::new(0x00, 0xB2, first, file.sfi << 3 | 0x05).with_le(256),
    )
}

/// READ BINARY of `file` from `offset` (SFI addressing).
pub fn read_binary(file: &FileDef, offset: u8, le: usize) -> Apdu {
    apdu(
        "READ BINARY",
        Command::new(0x00, 0xB0, 0x80 | file.sfi, offset).with_le(le),
    )
}

/// GET CHALLENGE of `len` bytes (4 for a MAC, 8 for external authentication).
pub fn get_challenge(len: usize) -> Apdu {
    apdu(
        "GET CHALLENGE",
        Command::new(0x00, 0x84, 0x00, 0x00).with_le(len),
    )
}

/// INTERNAL AUTHENTICATE with the host's random number; the card answers a cryptogram.
pub fn internal_authenticate(kid: Kid, random: &[u8; 8]) -> Apdu {
    apdu(
        "INTERNAL AUTHENTICATE",
        Command::new(0x00, 0x88, 0x00, kid.id())
            .with_data(random.to_vec())
            .with_le(256),
    )
}

/// EXTERNAL AUTHENTICATE with the terminal's cryptogram over the card's challenge.
pub fn external_authenticate(kid: Kid, cryptogram: Vec<u8>) -> Apdu {
    apdu(
        "EXTERNAL AUTHENTICATE",
        Command::new(0x00, 0x82, 0x00, kid.id()).with_data(cryptogram),
    )
}

/// A buffer for secret bytes, allocated once at its final size (a growing `Vec` would leave
/// copies of the PIN in the buffers it outgrew) and zeroized when dropped.
fn secret_buffer(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(parts.iter().map(|p| p.len()).sum()));
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// The bytes of a secret buffer, moved (not copied) into a [`Command`], which zeroizes its
/// data when dropped.
fn into_command_data(mut secret: Zeroizing<Vec<u8>>) -> Vec<u8> {
    std::mem::take(&mut *secret)
}

/// VERIFY of the PIN in BCD.
pub fn verify(pin_bcd: &[u8]) -> Apdu {
    apdu(
        "VERIFY",
        Command::new(0x00, 0x20, 0x00, 0x00)
            .with_data(into_command_data(secret_buffer(&[pin_bcd]))),
    )
}

/// CHANGE PIN: old PIN ‖ `FF` ‖ new PIN, in BCD.
pub fn change_pin(old_bcd: &[u8], new_bcd: &[u8]) -> Apdu {
    let data = secret_buffer(&[old_bcd, &[0xFF], new_bcd]);
    apdu(
        "CHANGE PIN",
        Command::new(0x80, 0x5E, 0x01, 0x00).with_data(into_command_data(data)),
    )
}

/// GET RESPONSE of `len` bytes (T=0).
pub fn get_response(len: usize) -> Apdu {
    apdu(
        "GET RESPONSE",
        Command::new(0x00, 0xC0, 0x00, 0x00).with_le(len),
    )
}

/// PSAM: READ BINARY of EF15 (SFI 15).
pub fn psam_read_ef15() -> Apdu {
    apdu(
        "READ BINARY EF15",
        Command::new(0x00, 0xB0, 0x95, 0x00).with_le(super::psam::EF15_LEN),
    )
}

/// PSAM: READ BINARY of EF16, the terminal number (`00B0960006`).
pub fn psam_read_ef16() -> Apdu {
    apdu(
        "READ BINARY EF16",
        Command::new(0x00, 0xB0, 0x96, 0x00).with_le(super::psam::EF16_LEN),
    )
}

/// PSAM: DES INIT of key `kid` (index `01`) with the factors from the PSAM's level down to
/// the card, concatenated.
pub fn des_init(kid: Kid, factors: &[u8]) -> Apdu {
    apdu(
        "DES INIT",
        Command::new(0x80, 0x1A, kid.id(), 0x01).with_data(factors.to_vec()),
    )
}

/// PSAM: DES CRYPT, ECB encryption of whole blocks (a cryptogram). The answer is secret
/// ([`describe`]).
pub fn des_crypt_encrypt(data: Vec<u8>) -> Apdu {
    apdu(
        "DES CRYPT",
        Command::new(0x80, 0xFA, 0x00, 0x00).with_data(data),
    )
}

/// PSAM: DES CRYPT, MAC of `message` with IV `iv_block` (one block); the PSAM pads. The answer
/// is secret.
pub fn des_crypt_mac(iv_block: &[u8], message: &[u8]) -> Apdu {
    let mut data = iv_block.to_vec();
    data.extend_from_slice(message);
    apdu(
        "DES CRYPT",
        Command::new(0x80, 0xFA, 0x05, 0x00).with_data(data),
    )
}

/// A command under line protection (PROFILE section 5): the MAC covers
/// `CLA INS P1 P2 Lc ‖ data`, where Lc counts the 4 MAC bytes. The data (a new PIN, a key
/// block) is zeroized on drop and `Debug` shows its length only, like [`Command`].
#[derive(Clone, PartialEq, Eq)]
pub struct LineProtected {
    pub name: &'static str,
    pub header: [u8; 4],
    pub data: Vec<u8>,
    pub secrecy: Secrecy,
}

impl Drop for LineProtected {
    fn drop(&mut self) {
        self.data.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for LineProtected {}

impl std::fmt::Debug for LineProtected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineProtected")
            .field("name", &self.name)
            .field("header", &crate::hexfmt::to_hex(&self.header))
            .field("data_len", &self.data.len())
            .field("secrecy", &self.secrecy)
            .finish()
    }
}

impl LineProtected {
    /// A line-protected command with this header and data; its secrecy follows [`describe`].
    pub fn new(name: &'static str, header: [u8; 4], data: Vec<u8>) -> Self {
        Self {
            name,
            header,
            data,
            secrecy: describe(header[0], header[1]).secrecy,
        }
    }

    /// Marks the data secret in traces whatever the instruction.
    pub fn secret(mut self) -> Self {
        self.secrecy = Secrecy::COMMAND_DATA;
        self
    }

    fn lc(&self) -> Result<u8, CommandError> {
        u8::try_from(self.data.len() + 4).map_err(|_| CommandError::TooLongForMac {
            name: self.name,
            len: self.data.len(),
        })
    }

    /// What the MAC is computed over: header ‖ Lc ‖ data (a RELOAD PIN's holds the new PIN,
    /// hence the zeroizing buffer).
    pub fn mac_input(&self) -> Result<Zeroizing<Vec<u8>>, CommandError> {
        Ok(secret_buffer(&[&self.header, &[self.lc()?], &self.data]))
    }

    /// The command carrying `mac` after the data.
    pub fn with_mac(self, mac: [u8; 4]) -> Result<Apdu, CommandError> {
        self.lc()?;
        let [cla, ins, p1, p2] = self.header;
        let body = secret_buffer(&[&self.data, &mac]);
        let mut a = apdu(
            self.name,
            Command::new(cla, ins, p1, p2).with_data(into_command_data(body)),
        );
        a.secrecy = a.secrecy.union(self.secrecy);
        Ok(a)
    }
}

/// UPDATE RECORD of record `number` of `file` with a TLV record.
pub fn update_record(file: &FileDef, number: u8, tlv: Vec<u8>) -> LineProtected {
    LineProtected::new(
        "UPDATE RECORD",
        [0x04, 0xDC, number, file.sfi << 3 | 0x04],
        tlv,
    )
}

/// UPDATE BINARY of `file` at `offset` (SFI addressing).
pub fn update_binary(file: &FileDef, offset: u8, data: Vec<u8>) -> LineProtected {
    LineProtected::new("UPDATE BINARY", [0x04, 0xD6, 0x80 | file.sfi, offset], data)
}

/// RELOAD PIN under RPK: the new PIN in BCD.
pub fn reload_pin(new_bcd: &[u8]) -> LineProtected {
    LineProtected::new(
        "RELOAD PIN",
        [0x84, 0x5E, 0x00, 0x00],
        into_command_data(secret_buffer(&[new_bcd])),
    )
}

/// UNBLOCK PIN under UPK: the MAC covers the header alone.
pub fn unblock_pin() -> LineProtected {
    LineProtected::new("UNBLOCK PIN", [0x84, 0x24, 0x00, 0x01], Vec::new())
}

/// WRITE KEY of `kid` during personalisation: the key block encrypted under TK.
pub fn write_key(kid: Kid, block: Vec<u8>) -> LineProtected {
    LineProtected::new("WRITE KEY", [0x84, 0xD4, 0x00, kid.id()], block)
}

/// END PERSONALISATION under TK: PERSONALISATION → ISSUED.
pub fn end_personalisation() -> LineProtected {
    LineProtected::new("END PERSONALISATION", [0x84, 0xEE, 0x00, 0x00], Vec::new())
}

/// The WRITE KEY plaintext before encryption under TK (PROFILE section 4):
/// `LEN ‖ KID ‖ ALG ‖ TRIES ‖ VALUE`, padded with ISO/IEC 9797-1 method 2 to the block size.
pub fn key_block_plain(
    alg: crate::crypto::Algorithm,
    kid: Kid,
    tries: u8,
    value: &[u8],
) -> Zeroizing<Vec<u8>> {
    let mut plain = secret_buffer(&[&[0, kid.id(), alg.id(), tries], value]);
    plain[0] = (plain.len() - 1) as u8;
    Zeroizing::new(crate::crypto::padding::pad_method2(
        &plain,
        alg.block_size(),
    ))
}

/// The initial PIN 123456 in BCD, as the PIN object (KID `30`) is loaded.
pub const INITIAL_PIN_BCD: [u8; 3] = [0x12, 0x34, 0x56];

#[cfg(test)]
mod tests {
    use super::super::files::{by_name, ef05, ef06};
    use super::*;
    use crate::hexfmt::to_hex;

    fn hex(a: &Apdu) -> String {
        to_hex(&a.command.to_bytes().unwrap())
    }

    #[test]
    fn bytes_follow_the_profile() {
        assert_eq!(
            hex(&select_ssse()),
            "00A404000F7378312E73682EC9E7BBE1B1A3D5CF00"
        );
        assert_eq!(hex(&select_df01()), "00A4000002DF01");
        assert_eq!(hex(&read_records_from(ef05(), 1)), "00B2012D00");
        assert_eq!(hex(&read_record(ef06(), 2)), "00B2023400");
        assert_eq!(hex(&read_record_by_tag(ef06(), 0x4E)), "00B24E3000");
        assert_eq!(hex(&select_ef(ef05())), "00A4000002EF05");
        assert_eq!(
            hex(&read_binary(by_name("DF01/EF02").unwrap(), 0, 256)),
            "00B0820000"
        );
        assert_eq!(hex(&get_challenge(8)), "0084000008");
        assert_eq!(
            hex(&internal_authenticate(Kid::Irk, &[1, 2, 3, 4, 5, 6, 7, 8])),
            "00880008080102030405060708".to_string() + "00"
        );
        assert_eq!(hex(&psam_read_ef16()), "00B0960006");
        assert_eq!(
            hex(&change_pin(&[0x12, 0x34, 0x56], &[0x80, 0x24, 0x17])),
            "805E010007123456FF802417"
        );
    }

    #[test]
    fn line_protection_counts_the_mac_in_lc() {
        let lp = update_record(ef06(), 4, vec![0x0A, 0x01, 0x31]);
        assert_eq!(to_hex(&lp.mac_input().unwrap()), "04DC0434070A0131");
        let a = lp.with_mac([0x38, 0xF6, 0xBD, 0xC8]).unwrap();
        assert_eq!(hex(&a), "04DC0434070A013138F6BDC8");
        assert_eq!(a.idempotence, Idempotence::ChangesCard);
        let long = update_binary(by_name("DF01/EF02").unwrap(), 0, vec![0; 252]);
        assert_eq!(
            long.mac_input(),
            Err(CommandError::TooLongForMac {
                name: "UPDATE BINARY",
                len: 252
            })
        );
        assert!(
            update_binary(by_name("DF01/EF02").unwrap(), 0, vec![0; 251])
                .mac_input()
                .is_ok()
        );
        assert_eq!(to_hex(&unblock_pin().mac_input().unwrap()), "8424000104");
        assert_eq!(
            write_key(Kid::Irk, vec![1; 8]).secrecy,
            Secrecy::COMMAND_DATA
        );
    }

    #[test]
    fn any_bytes_are_described_by_semantics() {
        for (ins, secret) in [
            (0x20, true),
            (0x21, true),
            (0x24, true),
            (0x25, true),
            (0x26, true),
            (0x28, true),
            (0x2C, true),
            (0x2D, true),
            (0x5E, true),
            (0x82, true),
            (0xD4, true),
            (0xB2, false),
        ] {
            assert_eq!(
                describe(0x00, ins).secrecy.command_data,
                secret,
                "{ins:02X}"
            );
        }
        assert_eq!(describe(0x00, 0x20).idempotence, Idempotence::ChangesCard);
        // The ISO PIN commands: secret data and a card changed, whatever the class.
        for cla in [0x00, 0x0C, 0x80, 0x84] {
            for (ins, name) in [
                (0x21, "VERIFY"),
                (0x25, "CHANGE REFERENCE DATA"),
                (0x26, "DISABLE VERIFICATION REQUIREMENT"),
                (0x28, "ENABLE VERIFICATION REQUIREMENT"),
                (0x2C, "RESET RETRY COUNTER"),
                (0x2D, "RESET RETRY COUNTER"),
            ] {
                let info = describe(cla, ins);
                assert_eq!(info.name, name, "{cla:02X}{ins:02X}");
                assert_eq!(info.secrecy, Secrecy::COMMAND_DATA, "{cla:02X}{ins:02X}");
                assert_eq!(
                    info.idempotence,
                    Idempotence::ChangesCard,
                    "{cla:02X}{ins:02X}"
                );
            }
        }
        assert_eq!(describe(0x00, 0x24).name, "CHANGE REFERENCE DATA");
        assert_eq!(describe(0x84, 0x24).name, "UNBLOCK PIN");
        assert_eq!(describe(0x84, 0x24).secrecy, Secrecy::COMMAND_DATA);
        assert_eq!(describe(0x00, 0xB2).idempotence, Idempotence::Idempotent);
        assert_eq!(describe(0x80, 0xFA).name, "DES CRYPT");
        // A raw DES CRYPT's answer is as secret as a flow's.
        assert_eq!(describe(0x80, 0xFA).secrecy, Secrecy::RESPONSE_DATA);
        assert_eq!(describe(0x80, 0x1A).secrecy, Secrecy::PUBLIC);
        assert_eq!(des_crypt_mac(&[0; 8], b"x").secrecy, Secrecy::RESPONSE_DATA);
        assert_eq!(describe(0x00, 0x99).idempotence, Idempotence::ChangesCard);
        assert_eq!(describe_bytes(&[0x00]).name, "command");
        assert_eq!(
            des_crypt_encrypt(vec![0; 8]).secrecy,
            Secrecy::RESPONSE_DATA
        );
    }
}
