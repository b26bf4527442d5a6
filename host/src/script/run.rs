//! Runs parsed scripts against a card (and a PSAM) through any transport, with a key source
//! for the secure macros.

use super::parse::{Action, Piece, Script, Step, Target, TestCase};
use crate::channel::Channel;
use crate::keys::{CardRef, KeySource};
use crate::trace::{Secrecy, TextSink};
use crate::transport::Transport;
use rand::RngCore;
use sscard_core::apdu::{Command, Response};
use sscard_core::crypto::{ct_eq, Algorithm};
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::{kid, SSSE_AID};
use sscard_core::tlv::{Fci, Record};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The outcome of one test case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

/// One test case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub outcome: Outcome,
    pub apdus: u64,
    pub duration: Duration,
}

/// One file's results.
#[derive(Clone, Debug)]
pub struct FileResult {
    pub path: String,
    pub algorithm: Option<Algorithm>,
    pub cases: Vec<CaseResult>,
    pub duration: Duration,
}

/// What the card said about itself before the tests.
struct CardFacts {
    algorithm: Algorithm,
    card: CardRef,
}

fn facts(card: &mut (dyn Transport + '_)) -> Result<CardFacts, String> {
    card.reset().map_err(|e| format!("reset: {e}"))?;
    let mut ch = Channel::new(card);
    let r = ch
        .transmit(
            &Command::new(0x00, 0xA4, 0x04, 0x00)
                .with_data(SSSE_AID)
                .with_le(256),
        )
        .map_err(|e| e.to_string())?;
    if !r.is_success() {
        return Err(format!(
            "SELECT SSSE answered {}: not a social security card",
            r.sw
        ));
    }
    let fci = Fci::parse(&r.data).map_err(|e| e.to_string())?;
    let algorithm = Algorithm::from_id(fci.algorithm_id).map_err(|e| e.to_string())?;
    let r = ch
        .transmit(&Command::new(0x00, 0xB2, 0x01, 0x2C).with_le(256))
        .map_err(|e| e.to_string())?;
    let rec = Record::parse(&r.data).map_err(|e| format!("EF05 record 1: {e}"))?;
    let id: [u8; 16] = rec
        .value
        .try_into()
        .map_err(|_| "EF05 record 1 is not 16 bytes".to_string())?;
    drop(ch);
    card.reset().map_err(|e| format!("reset: {e}"))?;
    Ok(CardFacts {
        algorithm,
        card: CardRef::new(id),
    })
}

/// Runs every test case of `script`.
pub fn run_script<'b>(
    script: &Script,
    card: &mut (dyn Transport + 'b),
    mut psam: Option<&mut (dyn Transport + 'b)>,
    keys: &mut (dyn KeySource + 'b),
    trace: bool,
) -> FileResult {
    let start = Instant::now();
    let facts = facts(card);
    let mut cases = Vec::new();
    let mut vars: HashMap<String, Vec<u8>> = HashMap::new();
    let prologue_error = match &facts {
        Err(e) => Some(e.clone()),
        Ok(f) => {
            let mut ctx = Ctx {
                card: &mut *card,
                psam: psam.as_deref_mut(),
                keys: &mut *keys,
                facts: f,
                vars: &mut vars,
                trace,
                apdus: 0,
            };
            script.prologue.iter().try_for_each(|s| ctx.step(s)).err()
        }
    };
    for t in &script.tests {
        let case_start = Instant::now();
        let (outcome, apdus) = match (&facts, &prologue_error) {
            (_, Some(e)) => (Outcome::Failed(format!("before the tests: {e}")), 0),
            (Ok(f), None) => run_case(
                t,
                f,
                &mut *card,
                psam.as_deref_mut(),
                &mut *keys,
                &vars,
                trace,
            ),
            (Err(e), None) => (Outcome::Failed(e.clone()), 0),
        };
        cases.push(CaseResult {
            name: t.name.clone(),
            file: t.file.to_string(),
            line: t.line,
            outcome,
            apdus,
            duration: case_start.elapsed(),
        });
    }
    FileResult {
        path: script.path.clone(),
        algorithm: facts.ok().map(|f| f.algorithm),
        cases,
        duration: start.elapsed(),
    }
}

fn run_case<'b>(
    t: &TestCase,
    facts: &CardFacts,
    card: &mut (dyn Transport + 'b),
    mut psam: Option<&mut (dyn Transport + 'b)>,
    keys: &mut (dyn KeySource + 'b),
    prologue_vars: &HashMap<String, Vec<u8>>,
    trace: bool,
) -> (Outcome, u64) {
    if let Some(only) = t.only {
        if only != facts.algorithm {
            return (
                Outcome::Skipped(format!("only for {} cards", only.name())),
                0,
            );
        }
    }
    // Every test case starts from a warm reset: no security status, no challenge.
    if let Err(e) = card.reset() {
        return (Outcome::Failed(format!("reset: {e}")), 0);
    }
    if let Some(p) = psam.as_deref_mut() {
        let _ = p.reset();
    }
    let mut vars = prologue_vars.clone();
    let mut ctx = Ctx {
        card,
        psam,
        keys,
        facts,
        vars: &mut vars,
        trace,
        apdus: 0,
    };
    let outcome = match t.steps.iter().try_for_each(|s| ctx.step(s)) {
        Ok(()) => Outcome::Passed,
        Err(e) => Outcome::Failed(e),
    };
    (outcome, ctx.apdus)
}

struct Ctx<'a, 'b> {
    card: &'a mut (dyn Transport + 'b),
    psam: Option<&'a mut (dyn Transport + 'b)>,
    keys: &'a mut (dyn KeySource + 'b),
    facts: &'a CardFacts,
    vars: &'a mut HashMap<String, Vec<u8>>,
    trace: bool,
    apdus: u64,
}

impl Ctx<'_, '_> {
    fn bytes(&self, pieces: &[Piece]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Bytes(b) => out.extend_from_slice(b),
                Piece::Var(v) => out.extend_from_slice(
                    self.vars
                        .get(v)
                        .ok_or_else(|| format!("unknown variable ${v}"))?,
                ),
            }
        }
        Ok(out)
    }

    fn send(
        &mut self,
        target: Target,
        cmd: &Command,
        secrecy: Secrecy,
    ) -> Result<Response, String> {
        self.exchange(target, |ch| ch.transmit_marked(cmd, secrecy))
    }

    fn exchange(
        &mut self,
        target: Target,
        f: impl FnOnce(&mut Channel) -> Result<Response, crate::channel::ChannelError>,
    ) -> Result<Response, String> {
        let transport: &mut dyn Transport = match target {
            Target::Card => &mut *self.card,
            Target::Psam => self
                .psam
                .as_deref_mut()
                .ok_or("the script talks to @psam but no PSAM is attached")?,
        };
        let mut ch = Channel::new(transport);
        if self.trace {
            ch.add_sink(Box::new(TextSink::new(std::io::stderr(), true)));
        }
        let r = f(&mut ch).map_err(|e| e.to_string());
        self.apdus += ch.apdu_count();
        r
    }

    fn challenge(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let r = self.send(
            Target::Card,
            &Command::new(0x00, 0x84, 0x00, 0x00).with_le(n),
            Secrecy::PUBLIC,
        )?;
        if !r.is_success() || r.data.len() != n {
            return Err(format!(
                "GET CHALLENGE answered {} with {} bytes",
                r.sw,
                r.data.len()
            ));
        }
        Ok(r.data)
    }

    fn mac_command(
        &mut self,
        header: [u8; 4],
        data: &[u8],
        key_id: u8,
        wrong: bool,
    ) -> Result<Command, String> {
        let lc = u8::try_from(data.len() + 4).map_err(|_| {
            format!(
                "{} data bytes and a 4-byte MAC do not fit one short APDU (at most 251)",
                data.len()
            )
        })?;
        let challenge = self.challenge(4)?;
        let mut message = header.to_vec();
        message.push(lc);
        message.extend_from_slice(data);
        let mut mac = self
            .keys
            .mac(
                self.facts.algorithm,
                &self.facts.card,
                key_id,
                &challenge,
                &message,
            )
            .map_err(|e| e.to_string())?;
        if wrong {
            mac[3] ^= 0x01;
        }
        let mut body = data.to_vec();
        body.extend_from_slice(&mac);
        Ok(Command::new(header[0], header[1], header[2], header[3]).with_data(body))
    }

    fn step(&mut self, s: &Step) -> Result<(), String> {
        let at = |m: String| format!("{}:{}: {m}", s.file, s.line);
        let alg = self.facts.algorithm;
        let response = match &s.action {
            Action::Set { name, value } => {
                self.vars.insert(name.clone(), value.clone());
                return Ok(());
            }
            Action::Reset => {
                let t: &mut dyn Transport = match s.target {
                    Target::Card => &mut *self.card,
                    Target::Psam => self
                        .psam
                        .as_deref_mut()
                        .ok_or_else(|| at("no PSAM attached".into()))?,
                };
                t.reset().map_err(|e| at(format!("reset: {e}")))?;
                return Ok(());
            }
            Action::Apdu(pieces) => {
                // Script APDUs go out byte for byte and every status word comes back as is
                // (61xx, 6Cxx included): the script decides what to do next.
                let bytes = self.bytes(pieces).map_err(at)?;
                self.exchange(s.target, |ch| ch.transmit_raw(&bytes, Secrecy::PUBLIC))
                    .map_err(at)?
            }
            Action::ExtAuth { kid: k, wrong } => {
                let challenge = self.challenge(8).map_err(at)?;
                let mut c = self
                    .keys
                    .cryptogram(alg, &self.facts.card, *k, &challenge)
                    .map_err(|e| at(e.to_string()))?;
                if *wrong {
                    c[0] ^= 0x01;
                }
                self.send(
                    Target::Card,
                    &Command::new(0x00, 0x82, 0x00, *k).with_data(c),
                    Secrecy::COMMAND_DATA,
                )
                .map_err(at)?
            }
            Action::IntAuth { kid: k } => {
                let mut random = [0u8; 8];
                rand::thread_rng().fill_bytes(&mut random);
                let r = self
                    .send(
                        Target::Card,
                        &Command::new(0x00, 0x88, 0x00, *k)
                            .with_data(random)
                            .with_le(256),
                        Secrecy::PUBLIC,
                    )
                    .map_err(at)?;
                if r.is_success() {
                    let expected = self
                        .keys
                        .cryptogram(alg, &self.facts.card, *k, &random)
                        .map_err(|e| at(e.to_string()))?;
                    if !ct_eq(&expected, &r.data) {
                        return Err(at(
                            "INTERNAL AUTHENTICATE: the cryptogram does not match the key source"
                                .into(),
                        ));
                    }
                }
                r
            }
            Action::Mac {
                header,
                data,
                kid: k,
                wrong,
            } => {
                let data = self.bytes(data).map_err(at)?;
                let cmd = self.mac_command(*header, &data, *k, *wrong).map_err(at)?;
                self.send(Target::Card, &cmd, Secrecy::COMMAND_DATA)
                    .map_err(at)?
            }
            Action::WriteKey { kid: k, tries } => {
                let block = self
                    .keys
                    .key_load_block(alg, &self.facts.card, *k, *tries)
                    .map_err(|e| at(e.to_string()))?;
                let cmd = self
                    .mac_command([0x84, 0xD4, 0x00, *k], &block, kid::TK, false)
                    .map_err(at)?;
                self.send(Target::Card, &cmd, Secrecy::COMMAND_DATA)
                    .map_err(at)?
            }
        };
        if !s.sw.matches(response.sw) {
            return Err(at(format!(
                "expected {}, got {} ({})",
                s.sw.text(),
                response.sw,
                response.sw.meaning()
            )));
        }
        if let Some(p) = &s.data {
            if !p.matches(&response.data) {
                return Err(at(format!(
                    "expected data {}, got {}",
                    p.text(),
                    to_hex(&response.data)
                )));
            }
        }
        if let Some(save) = &s.save {
            let value = match save.range {
                None => response.data.clone(),
                Some((a, b)) => response
                    .data
                    .get(a..b)
                    .ok_or_else(|| {
                        at(format!(
                            "save ${}[{a}..{b}]: the response has {} bytes",
                            save.name,
                            response.data.len()
                        ))
                    })?
                    .to_vec(),
            };
            self.vars.insert(save.name.clone(), value);
        }
        Ok(())
    }
}
