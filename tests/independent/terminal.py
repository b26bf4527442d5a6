#!/usr/bin/python3
"""Independent terminal for the sscard profile (PROFILE.md, version 2; version 3 groups added).

Written from PROFILE.md alone, to cross-check the other team's software card.
Subcommands:
  selftest                                   section 9 values + published vectors
  info        --card READER --psam READER    section 7 "read basic info" flow
  conformance --card READER --psam READER    named checks of sections 1-7
  model-run   [--model PATH] [--alg 3des|sm4|both]
                                             start sscard-model on 35973/35974 and run
                                             info + conformance against it
Every subcommand prints JSON on stdout; exit status 0 only when every (hard) check passes;
failing checks are named on stderr.  Checks where PROFILE.md is silent and ISO 7816-4 / PBOC
practice was used are marked "profile silent" and never fail the run.
"""
import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time

from Cryptodome.Cipher import DES

# =====================================================================================
# Cryptography (section 5)
# =====================================================================================

# ---- SM4, GB/T 32907-2016 ----
_SBOX = bytes.fromhex(
    "d690e9fecce13db716b614c228fb2c05" "2b679a762abe04c3aa44132649860699"
    "9c4250f491ef987a33540b43edcfac62" "e4b31ca9c908e89580df94fa758f3fa6"
    "4707a7fcf37317ba83593c19e6854fa8" "686b81b27164da8bf8eb0f4b70569d35"
    "1e240e5e6358d1a225227c3b01217887" "d40046579fd327524c3602e7a0c4c89e"
    "eabf8ad240c738b5a3f7f2cef96115a1" "e0ae5da49b341a55ad933230f58cb1e3"
    "1df6e22e8266ca60c02923ab0d534e6f" "d5db3745defd8e2f03ff6a726d6c5b51"
    "8d1baf92bbddbc7f11d95c411f105ad8" "0ac13188a5cd7bbd2d74d012b8e5b4b0"
    "8969974a0c96777e65b9f109c56ec684" "18f07dec3adc4d2079ee5f3ed7cb3948")
_FK = (0xA3B1BAC6, 0x56AA3350, 0x677D9197, 0xB27022DC)
_CK = [(((4 * i * 7) & 0xff) << 24) | ((((4 * i + 1) * 7) & 0xff) << 16) |
       ((((4 * i + 2) * 7) & 0xff) << 8) | (((4 * i + 3) * 7) & 0xff) for i in range(32)]


def _rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & 0xffffffff


def _tau(a):
    return ((_SBOX[a >> 24] << 24) | (_SBOX[(a >> 16) & 0xff] << 16) |
            (_SBOX[(a >> 8) & 0xff] << 8) | _SBOX[a & 0xff])


def _sm4_T(x):
    b = _tau(x)
    return b ^ _rotl(b, 2) ^ _rotl(b, 10) ^ _rotl(b, 18) ^ _rotl(b, 24)


def _sm4_Tp(x):
    b = _tau(x)
    return b ^ _rotl(b, 13) ^ _rotl(b, 23)


def sm4_round_keys(key):
    if len(key) != 16:
        raise ValueError("SM4 key must be 16 bytes")
    mk = [int.from_bytes(key[i:i + 4], 'big') for i in range(0, 16, 4)]
    k = [mk[i] ^ _FK[i] for i in range(4)]
    rk = []
    for i in range(32):
        n = k[i] ^ _sm4_Tp(k[i + 1] ^ k[i + 2] ^ k[i + 3] ^ _CK[i])
        k.append(n)
        rk.append(n)
    return rk


def _sm4_block(rk, block):
    x = [int.from_bytes(block[i:i + 4], 'big') for i in range(0, 16, 4)]
    for i in range(32):
        x.append(x[i] ^ _sm4_T(x[i + 1] ^ x[i + 2] ^ x[i + 3] ^ rk[i]))
    return b''.join(v.to_bytes(4, 'big') for v in (x[35], x[34], x[33], x[32]))


def sm4_ecb_enc(key, data):
    if len(data) % 16:
        raise ValueError("SM4 data not a block multiple")
    rk = sm4_round_keys(key)
    return b''.join(_sm4_block(rk, data[i:i + 16]) for i in range(0, len(data), 16))


def sm4_ecb_dec(key, data):
    rk = sm4_round_keys(key)[::-1]
    return b''.join(_sm4_block(rk, data[i:i + 16]) for i in range(0, len(data), 16))


# ---- DES / two-key TDEA (built from single DES so no key is rejected as degenerate) ----
def des_enc(k8, d):
    return DES.new(k8, DES.MODE_ECB).encrypt(d)


def des_dec(k8, d):
    return DES.new(k8, DES.MODE_ECB).decrypt(d)


def tdes_ecb_enc(key, data):
    if len(key) != 16 or len(data) % 8:
        raise ValueError("3DES key 16 bytes, data block multiple")
    kl, kr = key[:8], key[8:]
    return b''.join(des_enc(kl, des_dec(kr, des_enc(kl, data[i:i + 8])))
                    for i in range(0, len(data), 8))


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def pad_m2(data, bs):
    """ISO/IEC 9797-1 padding method 2 (always adds 80, a whole block when aligned)."""
    d = data + b'\x80'
    return d + b'\x00' * ((-len(d)) % bs)


def retail_mac(key, data, iv=b'\x00' * 8):
    """ISO/IEC 9797-1 MAC algorithm 3 with padding method 2; full 8-byte result."""
    data = pad_m2(data, 8)
    kl, kr = key[:8], key[8:]
    h = iv
    for i in range(0, len(data), 8):
        h = des_enc(kl, xor(h, data[i:i + 8]))
    return des_enc(kl, des_dec(kr, h))


def sm4_cbc_mac(key, data, iv=b'\x00' * 16):
    data = pad_m2(data, 16)
    rk = sm4_round_keys(key)
    h = iv
    for i in range(0, len(data), 16):
        h = _sm4_block(rk, xor(h, data[i:i + 16]))
    return h


class Alg:
    def __init__(self, name):
        if name not in ('3des', 'sm4'):
            raise ValueError(name)
        self.name = name
        self.bs = 8 if name == '3des' else 16
        self.alg_id = 1 if name == '3des' else 3
        self.version = '2.00' if name == '3des' else '3.00'

    def ecb(self, key, data):
        return tdes_ecb_enc(key, data) if self.name == '3des' else sm4_ecb_enc(key, data)

    def diversify(self, key, d):
        if len(d) != 8:
            raise ValueError("factor must be 8 bytes")
        nd = bytes(b ^ 0xff for b in d)
        if self.name == '3des':
            return tdes_ecb_enc(key, d) + tdes_ecb_enc(key, nd)
        return sm4_ecb_enc(key, d + nd)

    def pad_block(self, r):
        return r + b'\x00' * ((-len(r)) % self.bs)

    def cryptogram(self, key, r):
        """C = E_K(R || 00..) over one block."""
        return self.ecb(key, self.pad_block(r))

    def full_mac(self, key, challenge, data):
        iv = challenge + b'\x00' * (self.bs - len(challenge))
        return retail_mac(key, data, iv) if self.name == '3des' else sm4_cbc_mac(key, data, iv)

    def mac(self, key, challenge, data):
        return self.full_mac(key, challenge, data)[:4]


# =====================================================================================
# Test key set (section 8) and hierarchy (section 5)
# =====================================================================================
H = bytes.fromhex
NATIONAL_MASTERS = {0x08: H('11111111111111112222222222222222'),   # IRK
                    0x0A: H('33333333333333334444444444444444'),   # RKSSSE
                    0x03: H('55555555555555556666666666666666')}   # UK_N
CITY_LOCAL_MASTERS = {0x11: H('0102030405060708090A0B0C0D0E0F10'),  # EAK_L
                      0x12: H('1112131415161718191A1B1C1D1E1F20'),  # UK_L
                      0x21: H('2122232425262728292A2B2C2D2E2F30'),  # RPK
                      0x22: H('3132333435363738393A3B3C3D3E3F40')}  # UPK
TRANSPORT_MASTER = H('404142434445464748494A4B4C4D4E4F')
KEY_NAMES = {0x08: 'IRK', 0x0A: 'RKSSSE', 0x03: 'UK_N', 0x11: 'EAK_L', 0x12: 'UK_L',
             0x21: 'RPK', 0x22: 'UPK', 0x00: 'TK'}


def province_factor(region6):
    return (region6[:2] + '0000sh').encode('ascii')


def city_factor(region6):
    return (region6 + 'sx').encode('ascii')


class KeySet:
    def __init__(self, alg, card_factor, province='110000', city='110100'):
        self.alg = alg
        self.card_factor = card_factor
        self.pf = province_factor(province)
        self.cf = city_factor(city)

    def province_key(self, kid):
        return self.alg.diversify(NATIONAL_MASTERS[kid], self.pf)

    def city_key(self, kid):
        if kid in CITY_LOCAL_MASTERS:
            return CITY_LOCAL_MASTERS[kid]
        return self.alg.diversify(self.province_key(kid), self.cf)

    def card_key(self, kid):
        if kid == 0x00:
            return self.alg.diversify(TRANSPORT_MASTER, self.card_factor)
        return self.alg.diversify(self.city_key(kid), self.card_factor)

    def psam_factors(self, level):
        """Factors from the PSAM's level down to the card (section 6)."""
        return {0: [self.pf, self.cf, self.card_factor], 1: [self.cf, self.card_factor],
                2: [self.card_factor]}[level]


# =====================================================================================
# Field checks
# =====================================================================================
_CN_W = (3, 7, 9, 10, 5, 8, 4, 2)


def _cn_val(ch):
    if '0' <= ch <= '9':
        return ord(ch) - 48
    if 'A' <= ch <= 'Z':
        return ord(ch) - 55
    raise ValueError(ch)


def card_number_check_char(first8):
    s = sum(w * _cn_val(c) for w, c in zip(_CN_W, first8))
    r = 11 - s % 11
    return 'X' if r == 10 else ('0' if r == 11 else str(r))


def card_number_ok(cn):
    try:
        return len(cn) == 9 and all(c.isdigit() or 'A' <= c <= 'Z' for c in cn[:8]) and \
            card_number_check_char(cn[:8]) == cn[8]
    except ValueError:
        return False


def ssn_check_char(first17):
    s = sum(int(c) * (2 ** (17 - i) % 11) for i, c in enumerate(first17))
    r = (12 - s % 11) % 11
    return 'X' if r == 10 else str(r)


def ssn_ok(ssn):
    return len(ssn) == 18 and ssn[:17].isdigit() and ssn_check_char(ssn[:17]) == ssn[17]


def bcd_ok(b):
    return all((x >> 4) < 10 and (x & 15) < 10 for x in b)


def date_ok(b):
    if len(b) != 4 or not bcd_ok(b):
        return False
    s = b.hex()
    y, m, d = int(s[:4]), int(s[4:6]), int(s[6:])
    return 1 <= m <= 12 and 1 <= d <= 31 and y >= 1900


def hx(b):
    return bytes(b).hex().upper()


# =====================================================================================
# Transport
# =====================================================================================
class TransportError(Exception):
    pass


class Resp:
    def __init__(self, data, sw):
        self.data = bytes(data)
        self.sw = sw

    @property
    def sw1(self):
        return self.sw >> 8

    def __repr__(self):
        return '%s %04X' % (hx(self.data), self.sw)


def _find_reader(name):
    from smartcard.System import readers
    for r in readers():
        if str(r) == name:
            return r
    raise TransportError('reader %r not found' % name)


class Dev:
    """One PC/SC reader.  Retries connection for a while (pcscd may be restarted)."""

    def __init__(self, reader_name, label, log):
        self.reader_name = reader_name
        self.label = label
        self.log = log
        self.conn = None
        self.count = 0
        self.atr = b''
        self.protocol = None

    def connect(self, wait=60.0):
        deadline = time.time() + wait
        last = None
        while time.time() < deadline:
            try:
                if self.conn is not None:
                    try:
                        self.conn.disconnect()
                    except Exception:
                        pass
                self.conn = _find_reader(self.reader_name).createConnection()
                self.conn.connect()
                self.atr = bytes(self.conn.getATR())
                p = self.conn.getProtocol()
                from smartcard.CardConnection import CardConnection
                self.protocol = 'T=1' if p == CardConnection.T1_protocol else (
                    'T=0' if p == CardConnection.T0_protocol else str(p))
                return
            except Exception as e:  # PC/SC not available, reader absent, no card...
                last = e
                time.sleep(2)
        raise TransportError('%s: cannot connect to %r: %s' % (self.label, self.reader_name, last))

    def reset(self):
        """Warm reset (SCardReconnect with SCARD_RESET_CARD)."""
        from smartcard.scard import SCARD_RESET_CARD
        try:
            self.conn.reconnect(disposition=SCARD_RESET_CARD)
            self.atr = bytes(self.conn.getATR())
        except Exception as e:
            raise TransportError('%s: reset failed: %s' % (self.label, e))
        self.log.append({'dev': self.label, 'reset': True, 'atr': hx(self.atr)})

    def tx(self, apdu):
        apdu = bytes(apdu)
        try:
            data, sw1, sw2 = self.conn.transmit(list(apdu))
        except Exception as e:
            raise TransportError('%s: transmit %s failed: %s' % (self.label, hx(apdu), e))
        self.count += 1
        r = Resp(data, (sw1 << 8) | sw2)
        self.log.append({'dev': self.label, 'c': hx(apdu), 'r': hx(r.data), 'sw': '%04X' % r.sw})
        return r

    def close(self):
        try:
            if self.conn is not None:
                self.conn.disconnect()
        except Exception:
            pass


class Psam:
    """PSAM over T=0: 61xx -> GET RESPONSE; the terminal compares results itself."""

    def __init__(self, dev):
        self.dev = dev

    def tx(self, apdu):
        return self.dev.tx(apdu)

    def exchange(self, apdu):
        r = self.dev.tx(apdu)
        if r.sw1 == 0x61:
            r = self.dev.tx(bytes([0x00, 0xC0, 0x00, 0x00, r.sw & 0xff]))
        elif r.sw1 == 0x6C and len(apdu) == 5:
            r = self.dev.tx(apdu[:4] + bytes([r.sw & 0xff]))
        return r

    def select_df01(self):
        return self.dev.tx(H('00A4000002DF01'))

    def des_init(self, kid, factors, key_index=0x01):
        data = b''.join(factors)
        return self.dev.tx(bytes([0x80, 0x1A, kid, key_index, len(data)]) + data)

    def encrypt(self, data):
        return self.exchange(bytes([0x80, 0xFA, 0x00, 0x00, len(data)]) + data)

    def mac(self, iv, msg):
        d = iv + msg
        return self.exchange(bytes([0x80, 0xFA, 0x05, 0x00, len(d)]) + d)


# =====================================================================================
# Card constants
# =====================================================================================
SSSE_AID = H('7378312E73682EC9E7BBE1B1A3D5CF')
SEL_SSSE = H('00A404000F') + SSSE_AID
EF05_SPEC = [(0x01, 16), (0x02, 1), (0x03, 4), (0x04, 12), (0x05, 4), (0x06, 4), (0x07, 9)]
EF06_SPEC = [(0x08, 18), (0x09, 30), (0x4E, 20), (0x0A, 1), (0x0B, 1), (0x0C, 3), (0x0D, 4)]
EF07_SPEC = [(0x20, 1), (0x21, 1), (0x22, 8)]
EF01_SPEC = [(0x40, 8), (0x41, 16), (0x42, 32)]
PIN0 = H('123456')
CARD_ATR = H('3B880153534341524430319C')
PSAM_ATR = H('3B6800005053414D2D535331')


def parse_fcp(data):
    """Version 3, section 4: 62 { 82 file descriptor, 83 FID, 80 size (transparent) }, simple
    TLVs. Returns {tag: value} or None."""
    if len(data) < 2 or data[0] != 0x62 or data[1] != len(data) - 2:
        return None
    out, b = {}, data[2:]
    while b:
        if len(b) < 2 or len(b) < 2 + b[1]:
            return None
        out[b[0]] = b[2:2 + b[1]]
        b = b[2 + b[1]:]
    return out


def fcp_ok(data, fid, records=None, size=None):
    """An EF's FCP: 83 = FID; records: descriptor 04 (linear variable) followed by the data
    coding byte, the maximum record length (1 or 2 bytes, ISO 7816-4) and optionally the record
    count; transparent: descriptor 01 (ISO 7816-4 transparent working EF; PROFILE v3 writes 02,
    which ISO assigns to linear fixed records) and 80 = size."""
    f = parse_fcp(data)
    if f is None or f.get(0x83) != fid.to_bytes(2, 'big') or 0x82 not in f:
        return False
    d = f[0x82]
    if records is not None:
        longest, count = records
        if len(d) < 3 or d[0] != 0x04:
            return False
        mrl = d[2] if len(d) == 3 else int.from_bytes(d[2:4], 'big')
        n = d[4] if len(d) == 5 else (int.from_bytes(d[4:6], 'big') if len(d) == 6 else count)
        return mrl == longest and n == count
    return d[:1] == b'\x01' and int.from_bytes(f.get(0x80, b''), 'big') == size


def sel_fid(fid, p1=0x00, le=False):
    return bytes([0x00, 0xA4, p1, 0x00, 0x02]) + fid.to_bytes(2, 'big') + (b'\x00' if le else b'')


def rr(rec, p2, le=0):
    return bytes([0x00, 0xB2, rec, p2, le])


def sfi_p2(sfi, mode):
    return (sfi << 3) | mode


def parse_tlv_records(data):
    out = []
    i = 0
    while i + 2 <= len(data):
        t, l = data[i], data[i + 1]
        out.append((t, data[i + 2:i + 2 + l]))
        i += 2 + l
    return out, i == len(data)


def parse_fci(data):
    """6F { 84 name, A5 { 9F0C 03 { 86 01 alg }, C0 01 lc } } -> dict or None."""
    def tlvs(b):
        res, i = [], 0
        while i < len(b):
            t = b[i]
            i += 1
            if t & 0x1f == 0x1f:
                t = (t << 8) | b[i]
                i += 1
            if i >= len(b):
                return None
            ln = b[i]
            i += 1
            if i + ln > len(b):
                return None
            res.append((t, b[i:i + ln]))
            i += ln
        return res
    try:
        top = tlvs(data)
        if not top or len(top) != 1 or top[0][0] != 0x6F:
            return None
        inner = dict(tlvs(top[0][1]))
        a5 = dict(tlvs(inner[0xA5]))
        p = dict(tlvs(a5[0x9F0C]))
        return {'df_name': inner.get(0x84), 'alg': p[0x86][0], 'life_cycle': a5[0xC0][0],
                'exact_order': [t for t, _ in tlvs(top[0][1])] == [0x84, 0xA5]}
    except Exception:
        return None


# =====================================================================================
# Info flow (section 7, read basic info)
# =====================================================================================
class FlowError(Exception):
    def __init__(self, check, rc, detail):
        super().__init__('%s: %s' % (check, detail))
        self.check, self.rc, self.detail = check, rc, detail


def rc_of_sw(sw):
    return -sw


def read_basic_info(card, psam, psam_level=2, log_checks=None):
    """Runs the flow on connected Devs; returns a dict.  Raises FlowError."""
    checks = log_checks if log_checks is not None else []

    def chk(name, ok, detail=''):
        checks.append({'check': name, 'ok': bool(ok), 'detail': detail})
        return ok

    out = {}
    # 1. select SSSE, FCI gives the algorithm
    r = card.tx(SEL_SSSE + b'\x00')
    if r.sw != 0x9000:
        raise FlowError('select SSSE', rc_of_sw(r.sw), repr(r))
    fci = parse_fci(r.data)
    if not chk('SSSE FCI parses', fci is not None, hx(r.data)):
        raise FlowError('SSSE FCI', -1, hx(r.data))
    if fci['alg'] not in (1, 3):
        raise FlowError('algorithm not supported', -1, 'algorithm id %02X' % fci['alg'])
    alg = Alg('3des' if fci['alg'] == 1 else 'sm4')
    out['algorithm'] = alg.name
    out['life_cycle'] = fci['life_cycle']
    # 2. read EF05 (by SFI 05, record numbers 1..7)
    ef05 = {}
    for rec, (tag, ln) in enumerate(EF05_SPEC, 1):
        r = card.tx(rr(rec, sfi_p2(5, 4)))
        if r.sw != 0x9000:
            raise FlowError('read EF05 record %d' % rec, rc_of_sw(r.sw), repr(r))
        ok = len(r.data) == 2 + ln and r.data[0] == tag and r.data[1] == ln
        if not chk('EF05 record %d tag %02X len %d' % (rec, tag, ln), ok, hx(r.data)):
            raise FlowError('EF05 record %d' % rec, -20 if rec == 1 else -1, hx(r.data))
        ef05[tag] = r.data[2:]
    cic = ef05[0x01]
    if not chk('card identification code bytes 3-7 = D156000005 and region BCD',
               cic[3:8] == H('D156000005') and bcd_ok(cic[:3]), hx(cic)):
        raise FlowError('card identification code malformed', -20, hx(cic))
    version = ef05[0x03].decode('ascii', 'replace')
    if not chk('specification version matches FCI algorithm', version == alg.version,
               '%s vs %s' % (version, alg.name)):
        raise FlowError('specification version', -1, version)
    card_number = ef05[0x07].decode('ascii', 'replace')
    chk('card number check character', card_number_ok(card_number), card_number)
    chk('issue date BCD YYYYMMDD', date_ok(ef05[0x05]), hx(ef05[0x05]))
    chk('expiry date BCD YYYYMMDD', date_ok(ef05[0x06]), hx(ef05[0x06]))
    out.update({
        'card_identification_code': hx(cic), 'region_code': hx(cic[:3]),
        'card_type': ef05[0x02].decode('ascii', 'replace'), 'specification_version': version,
        'initialisation_organisation': hx(ef05[0x04]),
        'issue_date': hx(ef05[0x05]), 'expiry_date': hx(ef05[0x06]),
        'card_number': card_number, 'card_number_check_ok': card_number_ok(card_number)})
    factor = cic[8:16]
    ks = KeySet(alg, factor)
    factors = ks.psam_factors(psam_level)
    # 3. PSAM: select DF01, read EF16
    r = psam.select_df01()
    if r.sw != 0x9000:
        raise FlowError('PSAM select DF01', -2201, repr(r))
    r = psam.tx(H('00B0960006'))
    if r.sw != 0x9000 or len(r.data) != 6:
        raise FlowError('PSAM read EF16', -2201, repr(r))
    out['terminal_number'] = hx(r.data)
    # 4. internal authentication
    R = secrets.token_bytes(8)
    rc = card.tx(bytes([0x00, 0x88, 0x00, 0x08, 0x08]) + R + b'\x00')
    if rc.sw != 0x9000:
        raise FlowError('INTERNAL AUTHENTICATE', rc_of_sw(rc.sw), repr(rc))
    r = psam.des_init(0x08, factors)
    if r.sw == 0x6A88:
        raise FlowError('PSAM DES INIT IRK', -2202, repr(r))
    if r.sw == 0x6700:
        raise FlowError('PSAM DES INIT IRK (level)', -24, repr(r))
    if r.sw != 0x9000:
        raise FlowError('PSAM DES INIT IRK', -2201, repr(r))
    rp = psam.encrypt(alg.pad_block(R))
    if rp.sw != 0x9000:
        raise FlowError('PSAM DES CRYPT IRK', -2201, repr(rp))
    soft = alg.cryptogram(ks.card_key(0x08), R)
    chk('internal auth: card cryptogram length = block size', len(rc.data) == alg.bs, hx(rc.data))
    chk('internal auth: PSAM 80FA 00 result = own software (cross-check)', rp.data == soft,
        'psam %s soft %s' % (hx(rp.data), hx(soft)))
    out['internal_auth'] = {'R': hx(R), 'card': hx(rc.data), 'psam': hx(rp.data),
                            'software': hx(soft)}
    if not chk('internal auth: card = PSAM', rc.data == rp.data,
               'card %s psam %s' % (hx(rc.data), hx(rp.data))):
        raise FlowError('internal authentication failed', -21, 'card %s psam %s'
                        % (hx(rc.data), hx(rp.data)))
    # 5. on 3.00 cards: external authentication with RKSSSE
    if version == '3.00':
        r = card.tx(H('0084000008'))
        if r.sw != 0x9000 or len(r.data) != 8:
            raise FlowError('GET CHALLENGE 8', rc_of_sw(r.sw), repr(r))
        ch = r.data
        r = psam.des_init(0x0A, factors)
        if r.sw != 0x9000:
            raise FlowError('PSAM DES INIT RKSSSE', -2203, repr(r))
        rp = psam.encrypt(alg.pad_block(ch))
        if rp.sw != 0x9000:
            raise FlowError('PSAM DES CRYPT RKSSSE', -2203, repr(rp))
        soft = alg.cryptogram(ks.card_key(0x0A), ch)
        chk('RKSSSE cryptogram: PSAM = own software (cross-check)', rp.data == soft,
            'psam %s soft %s' % (hx(rp.data), hx(soft)))
        r = card.tx(bytes([0x00, 0x82, 0x00, 0x0A, alg.bs]) + rp.data)
        out['external_auth'] = {'challenge': hx(ch), 'cryptogram': hx(rp.data),
                                'sw': '%04X' % r.sw}
        if not chk('EXTERNAL AUTHENTICATE RKSSSE 9000', r.sw == 0x9000, repr(r)):
            raise FlowError('external authentication RKSSSE', rc_of_sw(r.sw), repr(r))
    # 6. read EF06
    ef06 = {}
    for rec, (tag, ln) in enumerate(EF06_SPEC, 1):
        r = card.tx(rr(rec, sfi_p2(6, 4)))
        if r.sw != 0x9000:
            raise FlowError('read EF06 record %d' % rec, rc_of_sw(r.sw), repr(r))
        ok = len(r.data) == 2 + ln and r.data[0] == tag and r.data[1] == ln
        if not chk('EF06 record %d tag %02X len %d' % (rec, tag, ln), ok, hx(r.data)):
            raise FlowError('EF06 record %d' % rec, -1, hx(r.data))
        ef06[tag] = r.data[2:]
    ssn = ef06[0x08].decode('ascii', 'replace')
    name_raw = ef06[0x09].rstrip(b'\x00') + ef06[0x4E].rstrip(b'\x00')
    try:
        full_name = name_raw.decode('gbk')
        gbk_ok = True
    except UnicodeDecodeError:
        full_name, gbk_ok = name_raw.decode('gbk', 'replace'), False
    chk('SSN ISO 7064 MOD 11-2 check', ssn_ok(ssn), ssn)
    chk('full name decodes as GBK', gbk_ok, hx(name_raw))
    gender = ef06[0x0A].decode('ascii', 'replace')
    chk('gender in 1/2/9', gender in ('1', '2', '9'), gender)
    chk('ethnic group BCD', bcd_ok(ef06[0x0B]), hx(ef06[0x0B]))
    chk('birthplace BCD', bcd_ok(ef06[0x0C]), hx(ef06[0x0C]))
    chk('birth date BCD YYYYMMDD', date_ok(ef06[0x0D]), hx(ef06[0x0D]))
    out.update({'ssn': ssn, 'ssn_check_ok': ssn_ok(ssn), 'name_gbk': hx(ef06[0x09]),
                'name_extension_gbk': hx(ef06[0x4E]), 'full_name': full_name,
                'gender': gender, 'nation': hx(ef06[0x0B]), 'birthplace': hx(ef06[0x0C]),
                'birth_date': hx(ef06[0x0D])})
    out['atr'] = hx(card.atr)
    out['historical_bytes'] = hx(historical_bytes(card.atr))
    return out


def historical_bytes(atr):
    """The historical bytes of an ATR (ISO/IEC 7816-3 8.2): after TS and T0, walk the interface
    bytes that each Y nibble announces (TA, TB, TC, TD in that order), then K = T0's low nibble
    bytes; a TCK may follow. Raises ValueError when the ATR is shorter than it announces."""
    if len(atr) < 2:
        raise ValueError('ATR shorter than TS T0')
    k = atr[1] & 0x0F
    y = atr[1] >> 4
    i = 2
    while True:
        td = None
        for bit in range(4):
            if y & (1 << bit):
                if i >= len(atr):
                    raise ValueError('ATR ends inside its interface bytes')
                if bit == 3:
                    td = atr[i]
                i += 1
        if td is None:
            break
        y = td >> 4
    if i + k > len(atr):
        raise ValueError('ATR ends inside its historical bytes')
    return bytes(atr[i:i + k])


def unified_line(info, device_number=''):
    fields = [info['region_code'], info['ssn'], info['card_number'],
              info['card_identification_code'], info['full_name'], info['historical_bytes'],
              info['specification_version'], info['issue_date'], info['expiry_date'],
              info['terminal_number'], device_number]
    return ''.join(f + '|' for f in fields)


# =====================================================================================
# Conformance
# =====================================================================================
class Checker:
    def __init__(self, card, psam):
        self.card = card
        self.psam = psam
        self.results = []

    # -- record a result
    def record(self, name, ok, silent=False, apdu=None, got=None, expected=None, note=None):
        status = ('pass' if ok else 'FAIL') if not silent else \
            ('pass (profile silent)' if ok else 'differs (profile silent)')
        e = {'check': name, 'status': status}
        if apdu is not None:
            e['apdu'] = apdu
        if got is not None:
            e['got'] = got
        if expected is not None:
            e['expected'] = expected
        if note:
            e['note'] = note
        self.results.append(e)
        return ok

    def expect(self, name, dev, apdu, sw, data=None, data_fn=None, silent=False, note=None,
               forbid=None):
        """Send apdu on dev; check SW in `sw` (int or list) and data (bytes, or predicate).
        forbid: SWs that make even a profile-silent check fail hard."""
        apdu = bytes(apdu)
        r = dev.tx(apdu)
        sws = sw if isinstance(sw, (list, tuple)) else [sw]
        ok = r.sw in sws
        if ok and data is not None:
            ok = r.data == data
        if ok and data_fn is not None:
            ok = bool(data_fn(r.data))
        exp = '/'.join('%04X' % s for s in sws)
        if data is not None:
            exp = hx(data) + ' ' + exp
        got = ('%s %04X' % (hx(r.data), r.sw)).strip()
        if silent and forbid and r.sw in forbid:
            self.record(name, False, False, '%s: %s' % (dev.label, hx(apdu)), got, exp,
                        (note or '') + ' [forbidden status word]')
        else:
            self.record(name, ok, silent, '%s: %s' % (dev.label, hx(apdu)), got, exp, note)
        return r


class Conformance:
    def __init__(self, card, psam, log):
        self.card = card
        self.psam_dev = psam
        self.psam = Psam(psam)
        self.log = log
        self.c = Checker(card, psam)
        self.notes = []

    # ------------------------------------------------------------------ helpers
    def tx(self, apdu):
        return self.card.tx(bytes(apdu))

    def fresh(self):
        """Reset the card, select SSSE (the start state of most groups)."""
        self.card.reset()
        self.tx(SEL_SSSE)

    def select_ssse(self):
        return self.tx(SEL_SSSE)

    def select_df01(self):
        return self.tx(sel_fid(0xDF01))

    def challenge(self, n=8):
        r = self.tx(bytes([0x00, 0x84, 0x00, 0x00, n]))
        if r.sw != 0x9000 or len(r.data) != n:
            self.c.record('GET CHALLENGE %d (setup)' % n, False, got=repr(r), expected='%d bytes 9000' % n)
        return r.data

    def psam_cryptogram(self, kid, data):
        r = self.psam.des_init(kid, self.ks.psam_factors(self.psam_level))
        if r.sw != 0x9000:
            return None
        r = self.psam.encrypt(self.alg.pad_block(data))
        return r.data if r.sw == 0x9000 else None

    def cryptogram(self, kid, ch, name):
        """Cryptogram for external authentication: from the PSAM for national keys
        (section 7), cross-checked against software; software for local keys (also
        cross-checked against the PSAM when the PSAM holds the key)."""
        soft = self.alg.cryptogram(self.ks.card_key(kid), ch)
        p = self.psam_cryptogram(kid, ch)
        key = (kid, 'crypt')
        if key not in self.crosschecked:
            self.crosschecked.add(key)
            if p is None:
                self.c.record('PSAM cryptogram for %s available' % KEY_NAMES[kid],
                              kid not in (0x08, 0x0A), silent=kid not in (0x08, 0x0A),
                              got='PSAM refused', note='city PSAM; local keys optional')
            else:
                self.c.record('PSAM cryptogram %s = own software (cross-check, %s)'
                              % (KEY_NAMES[kid], name), p == soft,
                              got=hx(p), expected=hx(soft))
        if kid in (0x08, 0x0A) and p is not None:
            return p
        return soft

    def ext_auth(self, kid, name, expect=0x9000):
        ch = self.challenge(8)
        crypt = self.cryptogram(kid, ch, name)
        return self.c.expect(name, self.card, bytes([0x00, 0x82, 0x00, kid, self.alg.bs]) + crypt,
                             expect)

    def ext_auth_quiet(self, kid):
        ch = self.challenge(8)
        crypt = self.alg.cryptogram(self.ks.card_key(kid), ch)
        return self.tx(bytes([0x00, 0x82, 0x00, kid, self.alg.bs]) + crypt)

    def mac_apdu(self, header, data, kid, challenge=None, corrupt=False):
        """Build CLA INS P1 P2 Lc data MAC; Lc counts the MAC; GET CHALLENGE 4 unless
        `challenge` is given."""
        if challenge is None:
            challenge = self.challenge(4)
        lc = len(data) + 4
        m = self.alg.mac(self.ks.card_key(kid), challenge, bytes(header) + bytes([lc]) + data)
        if corrupt:
            m = bytes([m[0] ^ 0x01]) + m[1:]
        return bytes(header) + bytes([lc]) + data + m

    def verify(self, pin=PIN0):
        return self.tx(bytes([0x00, 0x20, 0x00, 0x00, len(pin)]) + pin)

    def restore_state(self):
        """Bring PIN (123456, counter full) and external-auth counters back."""
        try:
            self.card.reset()
            self.select_ssse()
            self.tx(self.mac_apdu(H('845E0000'), PIN0, 0x21))
            self.verify()
            self.ext_auth_quiet(0x0A)
            self.select_df01()
            self.ext_auth_quiet(0x11)
            self.card.reset()
        except TransportError:
            pass

    def group(self, name, fn):
        for attempt in range(4):
            mark = len(self.c.results)
            try:
                fn()
                return
            except TransportError as e:
                del self.c.results[mark:]
                self.notes.append('group %r interrupted by a transport error (%s); retried' % (name, e))
                time.sleep(3)
                try:
                    self.card.connect()
                    self.psam_dev.connect()
                except TransportError:
                    continue
                self.restore_state()
        self.c.record('group %s completed (transport)' % name, False, note='transport errors')

    # ------------------------------------------------------------------ setup
    def setup(self):
        self.crosschecked = set()
        self.card.reset()
        r = self.tx(SEL_SSSE + b'\x00')
        fci = parse_fci(r.data) if r.sw == 0x9000 else None
        if fci is None or fci['alg'] not in (1, 3):
            raise FlowError('setup: select SSSE / FCI', -1, repr(r))
        self.alg = Alg('3des' if fci['alg'] == 1 else 'sm4')
        r = self.tx(rr(1, sfi_p2(5, 4)))
        if r.sw != 0x9000 or len(r.data) != 18:
            raise FlowError('setup: read EF05 record 1', -20, repr(r))
        self.cic = r.data[2:]
        self.ks = KeySet(self.alg, self.cic[8:16])
        self.psam_level = 2
        r = self.psam.select_df01()
        r = self.psam.exchange(H('00B0950018'))
        if r.sw == 0x9000 and len(r.data) == 24 and r.data[15] in (0, 1, 2):
            self.psam_level = r.data[15]
        self.is3 = self.alg.name == 'sm4'
        # originals, read with RKSSSE (software cryptogram) and PIN
        self.orig = {}
        self.card.reset()
        self.select_ssse()
        self.ext_auth_quiet(0x0A)
        for sfi, spec in ((5, EF05_SPEC), (6, EF06_SPEC), (7, EF07_SPEC)):
            for rec in range(1, len(spec) + 1):
                self.orig[(sfi, rec)] = self.tx(rr(rec, sfi_p2(sfi, 4))).data
        self.select_df01()
        self.verify()
        for rec in range(1, 4):
            self.orig[(1, rec)] = self.tx(rr(rec, sfi_p2(1, 4))).data
        r = self.tx(H('00B0820000'))
        self.orig_ef02 = r.data
        self.card.reset()

    # ------------------------------------------------------------------ groups
    def g_atr(self):
        c = self.c
        c.record('card ATR = profile default 3B8801 5353434152443031 9C', self.card.atr == CARD_ATR,
                 got=hx(self.card.atr), expected=hx(CARD_ATR), note='section 1 (model default)')
        a = self.card.atr
        x = 0
        for b in a[1:]:
            x ^= b
        tck_ok = len(a) > 2 and x == 0
        c.record('card ATR TCK (T0..TCK XOR = 00)', tck_ok, got=hx(a))
        c.record('card protocol T=1', self.card.protocol == 'T=1', got=self.card.protocol)
        c.record('PSAM ATR = profile default 3B680000 5053414D2D535331',
                 self.psam_dev.atr == PSAM_ATR, got=hx(self.psam_dev.atr), expected=hx(PSAM_ATR))
        c.record('PSAM protocol T=0', self.psam_dev.protocol == 'T=0', got=self.psam_dev.protocol)

    def g_select(self):
        c, card, alg = self.c, self.card, self.alg
        self.card.reset()
        fci = (H('6F1C840F') + SSSE_AID + H('A5099F0C038601') + bytes([alg.alg_id]) + H('C00102'))
        c.expect('SELECT SSSE by AID with Le 00 -> exact FCI (alg %02X, ISSUED)' % alg.alg_id,
                 card, SEL_SSSE + b'\x00', 0x9000, data=fci)
        c.expect('SELECT SSSE by AID without Le -> 9000, no data', card, SEL_SSSE, 0x9000, data=b'')
        c.expect('SELECT SSSE Le 10 < FCI length -> 6C%02X' % len(fci), card, SEL_SSSE + b'\x10',
                 0x6C00 | len(fci))
        c.expect('SELECT SSSE Le FF > FCI -> FCI 9000', card, SEL_SSSE + b'\xFF', 0x9000, data=fci)
        bad = SSSE_AID[:-1] + bytes([SSSE_AID[-1] ^ 1])
        c.expect('SELECT unknown AID (last byte changed) -> 6A82', card, H('00A404000F') + bad + b'\x00', 0x6A82)
        c.expect('SELECT unknown AID A000000003 -> 6A82', card, H('00A4040005A00000000300'), 0x6A82)
        self.select_ssse()
        for fid in (0xEF05, 0xEF06, 0xEF07):
            for p1 in (0x00, 0x02):
                c.expect('SELECT %04X P1=%02X -> 9000' % (fid, p1), card, sel_fid(fid, p1), 0x9000)
        c.expect('SELECT EF05 with Le 00 -> FCP 62{82 04.. max 18, 83 EF05}', card,
                 sel_fid(0xEF05, 0, True), 0x9000,
                 data_fn=lambda d: fcp_ok(d, 0xEF05, records=(18, 7)),
                 note='version 3, section 4')
        c.expect('SELECT EF09 (not present) -> 6A82', card, sel_fid(0xEF09), 0x6A82)
        c.expect('SELECT EF01 from SSSE (EF01 belongs to DF01) -> 6A82', card, sel_fid(0xEF01), 0x6A82,
                 silent=True, note='ISO 7816-4: FID selection searches the current DF')
        c.expect('SELECT P1=07 -> 6A86', card, H('00A4070002EF05'), 0x6A86)
        c.expect('SELECT P2=F0 -> 6A86', card, H('00A400F002EF05'), 0x6A86)
        c.expect('SELECT FID with Lc=01 -> 6700', card, H('00A4000001EF'), 0x6700)
        c.expect('SELECT FID with Lc=03 -> 6700', card, H('00A4000003EF0500'), 0x6700)
        self.select_ssse()

        def df01_fci(d):
            f = parse_fci(d)
            return f is not None and f['alg'] == alg.alg_id and f['life_cycle'] == 2 and f['df_name']
        r = c.expect('SELECT DF01 (00A40000) with Le -> FCI 6F{84,A5{9F0C{86 %02X},C0 02}}'
                     % alg.alg_id, card, sel_fid(0xDF01, 0, True), 0x9000, data_fn=df01_fci,
                     note='DF name of DF01 not given by the profile; structure checked')
        n = len(r.data)
        c.expect('SELECT DF01 Le 05 -> 6C%02X (FCI length)' % n, card, sel_fid(0xDF01) + b'\x05',
                 0x6C00 | n)
        for fid in (0xEF01, 0xEF02):
            for p1 in (0x00, 0x02):
                c.expect('DF01: SELECT %04X P1=%02X -> 9000' % (fid, p1), card, sel_fid(fid, p1), 0x9000)
        self.select_ssse()
        c.expect('SELECT DF01 with P1=02 -> (ISO: P1=02 is for EFs)', card, sel_fid(0xDF01, 2),
                 [0x9000, 0x6A82, 0x6A86], silent=True,
                 note='profile gives 00A40200 for EFs; either answer tolerated')
        c.expect('SELECT MF 3F00 -> 9000', card, sel_fid(0x3F00), 0x9000, silent=True,
                 note='MF is in the tree of section 2; selection by FID 3F00 per ISO')
        self.select_ssse()

    def g_read_record(self):
        c, card = self.c, self.card
        self.card.reset()
        self.select_ssse()
        c.expect('READ RECORD P2=04 with no current EF -> 6986', card, rr(1, 4), 0x6986, silent=True,
                 note='ISO 7816-4: command not allowed (no current EF)')
        c.expect('SELECT EF05', card, sel_fid(0xEF05), 0x9000)
        recs = {}
        for rec, (tag, ln) in enumerate(EF05_SPEC, 1):
            r = c.expect('EF05 READ RECORD %d (current EF, P2=04) -> tag %02X len %d' % (rec, tag, ln),
                         card, rr(rec, 4), 0x9000,
                         data_fn=lambda d, t=tag, l=ln: len(d) == l + 2 and d[0] == t and d[1] == l)
            recs[rec] = r.data
        for rec in range(1, 8):
            c.expect('EF05 READ RECORD %d by SFI (P2=2C) = current-EF form' % rec, card,
                     rr(rec, 0x2C), 0x9000, data=recs[rec])
        c.expect('EF05 READ RECORD 8 (P2=04) -> 6A83', card, rr(8, 4), 0x6A83)
        c.expect('EF05 READ RECORD 8 (SFI) -> 6A83', card, rr(8, 0x2C), 0x6A83)
        c.expect('EF05 READ RECORD by identifier tag 07, current EF (P2=00)', card, rr(7, 0x00), 0x9000,
                 data=recs[7])
        c.expect('EF05 READ RECORD by identifier tag 03, SFI (P2=28)', card, rr(3, 0x28), 0x9000,
                 data=recs[3])
        c.expect('EF05 READ RECORD identifier tag 09 (absent) -> 6A83', card, rr(9, 0x28), 0x6A83)
        allrec = b''.join(recs[i] for i in range(1, 8))
        c.expect('EF05 READ RECORDS 1 to last (P2=2D)', card, rr(1, 0x2D), 0x9000, data=allrec)
        c.expect('EF05 READ RECORDS 5 to last (P2=2D)', card, rr(5, 0x2D), 0x9000,
                 data=recs[5] + recs[6] + recs[7])
        c.expect('EF05 READ RECORDS 8 to last -> 6A83', card, rr(8, 0x2D), 0x6A83)
        c.expect('EF05 READ RECORDS Le 10 < %d -> 6C%02X' % (len(allrec), len(allrec)), card,
                 rr(1, 0x2D, 0x10), 0x6C00 | len(allrec))
        c.expect('EF05 READ RECORDS 1 to last, current EF (P2=05)', card, rr(1, 0x05), 0x9000,
                 data=allrec, silent=True, note='profile lists only the SFI form for P1 to last')
        c.expect('Le rule: READ RECORD 1 Le 05 < 18 -> 6C12', card, rr(1, 0x2C, 0x05), 0x6C12)
        c.expect('Le rule: READ RECORD 1 Le 12 = data -> data 9000', card, rr(1, 0x2C, 0x12), 0x9000,
                 data=recs[1])
        c.expect('Le rule: READ RECORD 1 Le 40 > data -> data 9000', card, rr(1, 0x2C, 0x40), 0x9000,
                 data=recs[1])
        c.expect('Le rule: READ RECORD 7 Le 01 -> 6C0B', card, rr(7, 0x04, 0x01), 0x6C0B)
        c.expect('READ RECORD P2 b3-b1=111 (RFU) -> 6A86', card, rr(1, 0x2F), 0x6A86)
        c.expect('READ RECORD SFI 09 (no such file) -> 6A82', card, rr(1, sfi_p2(9, 4)), 0x6A82,
                 silent=True, note='ISO 7816-4: file not found')
        c.expect('READ BINARY on record file EF05 (SFI) -> 6981', card, H('00B0850000'), 0x6981,
                 silent=True, note='ISO 7816-4: command incompatible with file structure')

    def g_national_access(self):
        c, card, alg = self.c, self.card, self.alg
        self.fresh()
        if self.is3:
            c.expect('3.00: EF06 before RKSSSE -> 6982', card, rr(1, 0x34), 0x6982)
            c.expect('3.00: EF06 identifier form before RKSSSE -> 6982', card, rr(0x09, 0x30), 0x6982)
        else:
            c.expect('2.00: EF06 readable without authentication', card, rr(1, 0x34), 0x9000,
                     data=self.orig[(6, 1)])
        c.expect('EF07 before RKSSSE -> 6982', card, rr(1, 0x3C), 0x6982)
        c.expect('SELECT EF07 then READ RECORD (current) before RKSSSE -> 6982', card, sel_fid(0xEF07), 0x9000)
        c.expect('EF07 current-EF read before RKSSSE -> 6982', card, rr(1, 0x04), 0x6982)
        # PIN does not open EF07 / EF06
        self.fresh()
        c.expect('VERIFY 123456 in SSSE -> 9000', card, H('0020000003123456'), 0x9000)
        c.expect('PIN does not open EF07 -> 6982', card, rr(1, 0x3C), 0x6982)
        if self.is3:
            c.expect('PIN does not open EF06 on 3.00 -> 6982', card, rr(1, 0x34), 0x6982)
        # RKSSSE opens
        self.fresh()
        self.ext_auth(0x0A, 'EXTERNAL AUTHENTICATE RKSSSE (PSAM cryptogram) -> 9000')
        ef06 = {}
        for rec, (tag, ln) in enumerate(EF06_SPEC, 1):
            r = c.expect('EF06 READ RECORD %d (SFI 06) -> tag %02X len %d' % (rec, tag, ln), card,
                         rr(rec, 0x34), 0x9000,
                         data_fn=lambda d, t=tag, l=ln: len(d) == l + 2 and d[0] == t and d[1] == l)
            ef06[tag] = r.data
        for rec, (tag, ln) in enumerate(EF07_SPEC, 1):
            c.expect('EF07 READ RECORD %d after RKSSSE -> tag %02X len %d' % (rec, tag, ln), card,
                     rr(rec, 0x3C), 0x9000,
                     data_fn=lambda d, t=tag, l=ln: len(d) == l + 2 and d[0] == t and d[1] == l)
        c.expect('EF07 READ RECORD 4 -> 6A83', card, rr(4, 0x3C), 0x6A83)
        for tag in (0x09, 0x4E, 0x0D, 0x08):
            c.expect('EF06 READ RECORD by identifier %02X (SFI, P2=30)' % tag, card, rr(tag, 0x30),
                     0x9000, data=ef06[tag])
        c.expect('EF06 identifier 02 (no such tag in EF06) -> 6A83', card, rr(0x02, 0x30), 0x6A83)
        c.expect('EF06 READ RECORD 2 by number is the name record (tag 09)', card, rr(2, 0x34), 0x9000,
                 data=ef06[0x09])
        c.expect('EF06 READ RECORDS 1 to last (P2=35)', card, rr(1, 0x35), 0x9000,
                 data=b''.join(ef06[t] for t, _ in EF06_SPEC))
        c.expect('SELECT EF06 keeps security status (same DF)', card, sel_fid(0xEF06), 0x9000)
        c.expect('EF06 by identifier 0A, current EF (P2=00)', card, rr(0x0A, 0x00), 0x9000,
                 data=ef06[0x0A])
        c.expect('Le rule: EF06 name record Le 10 -> 6C20', card, rr(2, 0x34, 0x10), 0x6C20)
        # KID outside its DF (in SSSE)
        self.challenge(8)
        c.expect('SSSE: EXTERNAL AUTHENTICATE KID 11 (EAK_L, DF01 only) -> 6A88', card,
                 bytes([0, 0x82, 0, 0x11, alg.bs]) + alg.cryptogram(self.ks.card_key(0x11), b'\x00' * 8),
                 0x6A88)
        c.expect('SSSE: INTERNAL AUTHENTICATE KID 11 -> 6A88', card,
                 H('00880011080102030405060708') + b'\x00', 0x6A88)
        self.challenge(8)
        c.expect('SSSE: EXTERNAL AUTHENTICATE KID 00 (TK, card ISSUED) -> 6A88', card,
                 bytes([0, 0x82, 0, 0x00, alg.bs]) + b'\x00' * alg.bs, 0x6A88)
        self.challenge(8)
        c.expect('SSSE: EXTERNAL AUTHENTICATE unknown KID 55 -> 6A88', card,
                 bytes([0, 0x82, 0, 0x55, alg.bs]) + b'\x00' * alg.bs, 0x6A88, silent=True,
                 note='key not found')

    def g_security_loss(self):
        c, card = self.c, self.card
        # lost on DF change
        self.fresh()
        self.ext_auth(0x0A, 'RKSSSE -> 9000 (before DF change)')
        c.expect('EF07 readable after RKSSSE', card, rr(1, 0x3C), 0x9000, data=self.orig[(7, 1)])
        c.expect('SELECT DF01', card, sel_fid(0xDF01), 0x9000)
        c.expect('national key does not open DF01: EF01 -> 6982', card, rr(1, 0x0C), 0x6982)
        c.expect('national key does not open DF01: EF02 READ BINARY -> 6982', card, H('00B0820008'), 0x6982)
        c.expect('SELECT SSSE again', card, SEL_SSSE, 0x9000)
        c.expect('security status lost on DF change: EF07 -> 6982', card, rr(1, 0x3C), 0x6982)
        # lost on reset
        self.fresh()
        self.ext_auth(0x0A, 'RKSSSE -> 9000 (before reset)')
        c.expect('EF07 readable after RKSSSE (before reset)', card, rr(1, 0x3C), 0x9000)
        self.card.reset()
        c.expect('SELECT SSSE after reset', card, SEL_SSSE, 0x9000)
        c.expect('security status lost on reset: EF07 -> 6982', card, rr(1, 0x3C), 0x6982)
        # PIN status in DF01: lost on DF change and on reset, kept on EF selection
        self.fresh()
        self.select_df01()
        c.expect('DF01 VERIFY 123456 -> 9000', card, H('0020000003123456'), 0x9000)
        c.expect('DF01 EF01 readable after PIN', card, rr(1, 0x0C), 0x9000, data=self.orig[(1, 1)])
        c.expect('SELECT EF02 (same DF)', card, sel_fid(0xEF02), 0x9000)
        c.expect('PIN status kept on EF selection: READ BINARY EF02', card, H('00B0000008'), 0x9000,
                 data=self.orig_ef02[:8])
        c.expect('SELECT SSSE (other DF)', card, SEL_SSSE, 0x9000)
        c.expect('SELECT DF01 again', card, sel_fid(0xDF01), 0x9000)
        c.expect('PIN status lost on DF change: EF01 -> 6982', card, rr(1, 0x0C), 0x6982)
        c.expect('DF01 VERIFY 123456 -> 9000 (before reset)', card, H('0020000003123456'), 0x9000)
        c.expect('DF01 EF01 readable (before reset)', card, rr(1, 0x0C), 0x9000)
        self.card.reset()
        self.select_ssse()
        self.select_df01()
        c.expect('PIN status lost on reset: EF01 -> 6982', card, rr(1, 0x0C), 0x6982)

    def g_df01(self):
        c, card, alg = self.c, self.card, self.alg
        self.fresh()
        c.expect('SSSE: VERIFY 123456 -> 9000', card, H('0020000003123456'), 0x9000)
        c.expect('SELECT DF01 after PIN in SSSE', card, sel_fid(0xDF01), 0x9000)
        c.expect('PIN verified in SSSE does not carry into DF01 (DF change): EF01 -> 6982', card,
                 rr(1, 0x0C), 0x6982)
        self.fresh()
        c.expect('SELECT DF01 without Le -> 9000, no data', card, sel_fid(0xDF01), 0x9000, data=b'')
        c.expect('SELECT DF01', card, sel_fid(0xDF01), 0x9000)
        c.expect('DF01 EF01 by SFI before PIN/EAK_L -> 6982', card, rr(1, 0x0C), 0x6982)
        c.expect('DF01 READ BINARY EF02 by SFI before PIN/EAK_L -> 6982', card, H('00B0820000'), 0x6982)
        c.expect('SELECT EF01', card, sel_fid(0xEF01), 0x9000)
        c.expect('DF01 EF01 current EF before PIN/EAK_L -> 6982', card, rr(1, 0x04), 0x6982)
        # KID outside DF in DF01
        self.challenge(8)
        crypt = self.alg.cryptogram(self.ks.card_key(0x0A), b'\x00' * 8)
        c.expect('DF01: EXTERNAL AUTHENTICATE KID 0A (RKSSSE, SSSE only) -> 6A88', card,
                 bytes([0, 0x82, 0, 0x0A, alg.bs]) + crypt, 0x6A88)
        c.expect('DF01: INTERNAL AUTHENTICATE KID 08 (IRK, SSSE only) -> 6A88', card,
                 H('00880008080102030405060708') + b'\x00', 0x6A88)
        self.challenge(8)
        c.expect('DF01: EXTERNAL AUTHENTICATE KID 03 (UK_N, SSSE only) -> 6A88', card,
                 bytes([0, 0x82, 0, 0x03, alg.bs]) + crypt, 0x6A88)
        # EAK_L opens
        self.ext_auth(0x11, 'DF01: EXTERNAL AUTHENTICATE EAK_L -> 9000')
        for rec, (tag, ln) in enumerate(EF01_SPEC, 1):
            c.expect('EF01 READ RECORD %d after EAK_L -> tag %02X len %d' % (rec, tag, ln), card,
                     rr(rec, 0x0C), 0x9000,
                     data_fn=lambda d, t=tag, l=ln: len(d) == l + 2 and d[0] == t and d[1] == l)
        c.expect('EF01 READ RECORD 4 -> 6A83', card, rr(4, 0x0C), 0x6A83)
        c.expect('EF01 by identifier 42 (SFI, P2=08)', card, rr(0x42, 0x08), 0x9000, data=self.orig[(1, 3)])
        c.expect('Le rule: EF01 rec 3 Le 10 -> 6C22', card, rr(3, 0x0C, 0x10), 0x6C22)
        c.expect('EF02 READ BINARY by SFI, Le 00 -> 256 bytes', card, H('00B0820000'), 0x9000,
                 data_fn=lambda d: len(d) == 256)
        c.expect('local key does not open national files: EF07 by SFI from DF01 -> not 9000', card,
                 rr(1, 0x3C), [0x6982, 0x6A82],
                 note='either "security status" or "not found in current DF"')
        c.expect('SELECT SSSE from DF01', card, SEL_SSSE, 0x9000)
        c.expect('local key does not open national files: EF07 -> 6982', card, rr(1, 0x3C), 0x6982)
        # PIN opens DF01; READ BINARY rules
        self.fresh()
        self.select_df01()
        c.expect('DF01: VERIFY 123456 -> 9000', card, H('0020000003123456'), 0x9000)
        c.expect('EF01 READ RECORD 1 after PIN', card, rr(1, 0x0C), 0x9000, data=self.orig[(1, 1)])
        c.expect('EF02 READ BINARY SFI offset 0 Le 00 -> 256 bytes', card, H('00B0820000'), 0x9000,
                 data=self.orig_ef02)
        c.expect('SELECT EF02', card, sel_fid(0xEF02), 0x9000)
        c.expect('EF02 READ BINARY current EF offset 0000 Le 00 -> 256 bytes', card, H('00B0000000'),
                 0x9000, data=self.orig_ef02)
        c.expect('EF02 READ BINARY offset 0010 Le 08', card, H('00B0001008'), 0x9000,
                 data=self.orig_ef02[16:24])
        c.expect('EF02 READ BINARY SFI offset F0 Le 10 (to the end)', card, H('00B082F010'), 0x9000,
                 data=self.orig_ef02[240:])
        c.expect('EF02 READ BINARY offset 0101 -> 6B00', card, H('00B0010101'), 0x6B00)
        c.expect('EF02 READ BINARY offset 0200 -> 6B00', card, H('00B0020001'), 0x6B00)
        c.expect('EF02 READ BINARY offset 0100 (= size) -> 6B00', card, H('00B0010001'), 0x6B00,
                 silent=True, note='offset equal to the file size read as beyond')
        c.expect('EF02 READ BINARY offset 0080 Le 00 -> rest (128 bytes)', card, H('00B0008000'),
                 [0x9000, 0x6282], data_fn=lambda d: d == self.orig_ef02[128:], silent=True,
                 note='Le 00 on a transparent file read as "to the end"')
        c.expect('EF02 READ BINARY offset 00FC Le 08 (past end)', card, H('00B000FC08'),
                 [0x9000, 0x6282], data_fn=lambda d: d == self.orig_ef02[252:], silent=True,
                 note='ISO: 6282 end of file reached before Le bytes; profile Le rule gives 9000')
        c.expect('READ RECORD on transparent EF02 (SFI 02) -> 6981', card, rr(1, 0x14), 0x6981)
        c.expect('READ BINARY on record file EF01 (SFI 01) -> 6981', card, H('00B0810000'), 0x6981,
                 silent=True, note='ISO 7816-4')

    def g_challenge_extauth(self):
        c, card, alg = self.c, self.card, self.alg
        bs = alg.bs
        self.fresh()
        c.expect('GET CHALLENGE 4 -> 4 bytes', card, H('0084000004'), 0x9000, data_fn=lambda d: len(d) == 4)
        c.expect('GET CHALLENGE 8 -> 8 bytes', card, H('0084000008'), 0x9000, data_fn=lambda d: len(d) == 8)
        c.expect('GET CHALLENGE P1=01 -> 6A86', card, H('0084010008'), 0x6A86)
        c.expect('GET CHALLENGE Le 10 -> 6700', card, H('0084000010'), 0x6700, silent=True,
                 note='profile allows 04 or 08 only; wrong length')
        a, b = self.challenge(8), self.challenge(8)
        c.record('GET CHALLENGE values differ', a != b, silent=True, got='%s %s' % (hx(a), hx(b)))
        self.fresh()
        crypt = alg.cryptogram(self.ks.card_key(0x0A), b'\x00' * 8)
        c.expect('EXTERNAL AUTHENTICATE without challenge -> 6984', card,
                 bytes([0, 0x82, 0, 0x0A, bs]) + crypt, 0x6984)
        ch = self.challenge(8)
        crypt = self.cryptogram(0x0A, ch, 'reset')
        self.card.reset()
        self.select_ssse()
        c.expect('challenge does not survive a reset (GET CHALLENGE, reset, SELECT) -> 6984', card,
                 bytes([0, 0x82, 0, 0x0A, bs]) + crypt, 0x6984, silent=True,
                 note='SELECT after reset consumes it anyway; volatile state')
        ch = self.challenge(4)
        c.expect('EXTERNAL AUTHENTICATE after a 4-byte challenge -> 6984', card,
                 bytes([0, 0x82, 0, 0x0A, bs]) + alg.cryptogram(self.ks.card_key(0x0A), ch), 0x6984)
        ch = self.challenge(8)
        crypt = self.cryptogram(0x0A, ch, 'single-use')
        c.expect('(intervening READ RECORD)', card, rr(1, 0x2C), 0x9000)
        c.expect('challenge consumed by an intervening READ RECORD -> 6984', card,
                 bytes([0, 0x82, 0, 0x0A, bs]) + crypt, 0x6984)
        ch = self.challenge(8)
        crypt = self.cryptogram(0x0A, ch, 'single-use')
        c.expect('(intervening unknown INS -> 6D00)', card, H('007A000000'), 0x6D00)
        c.expect('challenge consumed by a failing command -> 6984', card,
                 bytes([0, 0x82, 0, 0x0A, bs]) + crypt, 0x6984)
        ch = self.challenge(8)
        crypt = self.cryptogram(0x0A, ch, 'single-use')
        c.expect('(intervening SELECT EF05)', card, sel_fid(0xEF05), 0x9000)
        c.expect('challenge consumed by an intervening SELECT -> 6984', card,
                 bytes([0, 0x82, 0, 0x0A, bs]) + crypt, 0x6984)
        ch = self.challenge(8)
        crypt = self.cryptogram(0x0A, ch, 'single-use')
        c.expect('EXTERNAL AUTHENTICATE RKSSSE correct -> 9000', card,
                 bytes([0, 0x82, 0, 0x0A, bs]) + crypt, 0x9000)
        c.expect('same cryptogram again (challenge used) -> 6984', card,
                 bytes([0, 0x82, 0, 0x0A, bs]) + crypt, 0x6984)
        self.challenge(8)
        c.expect('EXTERNAL AUTHENTICATE P1=01 -> 6A86', card, bytes([0, 0x82, 1, 0x0A, bs]) + crypt, 0x6A86)
        self.challenge(8)
        wrong_b = 16 if bs == 8 else 8
        c.expect('EXTERNAL AUTHENTICATE Lc=%02X (not the block size) -> 6700' % wrong_b, card,
                 bytes([0, 0x82, 0, 0x0A, wrong_b]) + b'\x00' * wrong_b, 0x6700)
        # try counter (RKSSSE in SSSE, EAK_L in DF01)
        for kid, where in ((0x0A, 'SSSE'), (0x11, 'DF01')):
            self.fresh()
            if where == 'DF01':
                self.select_df01()
            nm = KEY_NAMES[kid]
            self.ext_auth(kid, '%s correct first (counter full) -> 9000' % nm)
            for left in (4, 3):
                ch = self.challenge(8)
                bad = xor(self.cryptogram(kid, ch, 'counter'), b'\x01' + b'\x00' * (bs - 1))
                c.expect('%s wrong cryptogram -> 63C%X' % (nm, left), card,
                         bytes([0, 0x82, 0, kid, bs]) + bad, 0x63C0 | left)
            self.ext_auth(kid, '%s correct after two failures -> 9000' % nm)
            ch = self.challenge(8)
            bad = xor(self.cryptogram(kid, ch, 'counter'), b'\x01' + b'\x00' * (bs - 1))
            c.expect('%s success restored the counter: wrong -> 63C4' % nm, card,
                     bytes([0, 0x82, 0, kid, bs]) + bad, 0x63C4)
            self.ext_auth(kid, '%s correct (restore counter) -> 9000' % nm)
            if kid == 0x0A:
                c.expect('EF07 readable after counter sequence', card, rr(1, 0x3C), 0x9000)
            else:
                c.expect('EF01 readable after counter sequence', card, rr(1, 0x0C), 0x9000)

    def g_internal_auth(self):
        c, card, alg = self.c, self.card, self.alg
        self.fresh()
        R = secrets.token_bytes(8)
        soft = alg.cryptogram(self.ks.card_key(0x08), R)
        p = self.psam_cryptogram(0x08, R)
        c.record('PSAM IRK cryptogram = own software', p == soft, got=hx(p or b''), expected=hx(soft))
        c.expect('INTERNAL AUTHENTICATE IRK -> block-size cryptogram = PSAM result', card,
                 H('0088000808') + R + b'\x00', 0x9000, data=p if p is not None else soft)
        c.expect('INTERNAL AUTHENTICATE Le < %d -> 6C%02X' % (alg.bs, alg.bs), card,
                 H('0088000808') + R + b'\x04', 0x6C00 | alg.bs)
        c.expect('INTERNAL AUTHENTICATE Le = %d -> data' % alg.bs, card,
                 H('0088000808') + R + bytes([alg.bs]), 0x9000, data=soft)
        c.expect('INTERNAL AUTHENTICATE Le FF -> data', card, H('0088000808') + R + b'\xFF', 0x9000, data=soft)
        c.expect('INTERNAL AUTHENTICATE Lc=04 -> 6700', card, H('008800080401020304') + b'\x00', 0x6700)
        c.expect('INTERNAL AUTHENTICATE P1=01 -> 6A86', card, H('0088010808') + R + b'\x00', 0x6A86)
        R2 = H('0102030405060708')
        c.expect('INTERNAL AUTHENTICATE fixed R 0102030405060708 = software', card,
                 H('0088000808') + R2 + b'\x00', 0x9000, data=alg.cryptogram(self.ks.card_key(0x08), R2))

    def g_general_sw(self):
        c, card = self.c, self.card
        self.fresh()
        c.expect('unknown INS 7A -> 6D00', card, H('007A000000'), 0x6D00)
        c.expect('unknown INS CA (GET DATA, not in the profile) -> 6D00', card, H('00CA9F7F00'), 0x6D00)
        c.expect('unknown CLA A0 -> 6E00', card, H('A0A40000023F00'), 0x6E00)
        c.expect('unknown CLA A0 with READ RECORD -> 6E00', card, H('A0B2012C00'), 0x6E00)

    def g_update_national(self):
        c, card, alg = self.c, self.card, self.alg
        self.fresh()
        if self.is3:
            self.ext_auth(0x0A, 'RKSSSE (to read EF06 back on 3.00)')
        g_orig = self.orig[(6, 4)]
        newg = b'2' if g_orig[2:] != b'2' else b'1'
        tlv = H('0A01') + newg
        c.expect('UPDATE RECORD EF06 rec 4 gender (04DC0434) with UK_N MAC -> 9000', card,
                 self.mac_apdu(H('04DC0434'), tlv, 0x03), 0x9000)
        c.expect('read back EF06 rec 4', card, rr(4, 0x34), 0x9000, data=tlv)
        c.expect('UPDATE RECORD gender wrong MAC -> 6988', card,
                 self.mac_apdu(H('04DC0434'), g_orig, 0x03, corrupt=True), 0x6988)
        c.expect('wrong MAC did not write', card, rr(4, 0x34), 0x9000, data=tlv)
        c.expect('UPDATE RECORD gender MAC under UK_L (local key on national file) -> 6988', card,
                 self.mac_apdu(H('04DC0434'), g_orig, 0x12), 0x6988)
        c.expect('UPDATE RECORD gender MAC under RKSSSE (wrong key) -> 6988', card,
                 self.mac_apdu(H('04DC0434'), g_orig, 0x0A), 0x6988)
        ch = self.challenge(4)
        c.expect('(intervening READ RECORD)', card, rr(1, 0x2C), 0x9000)
        c.expect('UPDATE RECORD with consumed challenge -> 6984', card,
                 self.mac_apdu(H('04DC0434'), g_orig, 0x03, challenge=ch), 0x6984)
        ch = self.challenge(4)
        c.expect('UPDATE RECORD wrong MAC (6988) ...', card,
                 self.mac_apdu(H('04DC0434'), g_orig, 0x03, challenge=ch, corrupt=True), 0x6988)
        c.expect('... consumed the challenge: correct MAC over it -> 6984', card,
                 self.mac_apdu(H('04DC0434'), g_orig, 0x03, challenge=ch), 0x6984)
        c.expect('UPDATE RECORD other tag (0B in rec 4) -> 6A80', card,
                 self.mac_apdu(H('04DC0434'), H('0B0131'), 0x03), 0x6A80)
        c.expect('UPDATE RECORD other length (0A 02) -> 6A80', card,
                 self.mac_apdu(H('04DC0434'), H('0A023131'), 0x03), 0x6A80)
        c.expect('UPDATE RECORD plain CLA 00 (no MAC) -> 6982', card, H('00DC0434030A0131'),
                 0x6982, note='version 3, section 4')
        c.expect('EF06 rec 4 still the written value', card, rr(4, 0x34), 0x9000, data=tlv)
        c.expect('restore EF06 rec 4 -> 9000', card, self.mac_apdu(H('04DC0434'), g_orig, 0x03), 0x9000)
        c.expect('read back restored EF06 rec 4', card, rr(4, 0x34), 0x9000, data=g_orig)
        # multi-block MAC: the name record (30 bytes)
        name = '测试姓名'.encode('gbk')
        ntlv = H('091E') + name + b'\x00' * (30 - len(name))
        c.expect('UPDATE RECORD EF06 rec 2 name (32-byte TLV, multi-block MAC) -> 9000', card,
                 self.mac_apdu(H('04DC0234'), ntlv, 0x03), 0x9000)
        c.expect('read back name record', card, rr(2, 0x34), 0x9000, data=ntlv)
        c.expect('restore name record -> 9000', card, self.mac_apdu(H('04DC0234'), self.orig[(6, 2)], 0x03), 0x9000)
        c.expect('read back restored name', card, rr(2, 0x34), 0x9000, data=self.orig[(6, 2)])
        # EF05 via current EF
        c.expect('SELECT EF05', card, sel_fid(0xEF05), 0x9000)
        t_orig = self.orig[(5, 2)]
        t_new = H('0201') + (b'3' if t_orig[2:] != b'3' else b'1')
        c.expect('UPDATE RECORD EF05 rec 2 (current EF, 04DC0204) with UK_N MAC -> 9000', card,
                 self.mac_apdu(H('04DC0204'), t_new, 0x03), 0x9000)
        c.expect('read back EF05 rec 2', card, rr(2, 0x04), 0x9000, data=t_new)
        c.expect('restore EF05 rec 2 -> 9000', card, self.mac_apdu(H('04DC0204'), t_orig, 0x03), 0x9000)
        c.expect('read back restored EF05 rec 2', card, rr(2, 0x2C), 0x9000, data=t_orig)
        # EF07 by SFI
        self.fresh()
        self.ext_auth(0x0A, 'RKSSSE (to read EF07 back)')
        s_orig = self.orig[(7, 1)]
        s_new = H('2001') + (b'\x02' if s_orig[2:] != b'\x02' else b'\x01')
        c.expect('UPDATE RECORD EF07 rec 1 (04DC013C) with UK_N MAC -> 9000', card,
                 self.mac_apdu(H('04DC013C'), s_new, 0x03), 0x9000)
        c.expect('read back EF07 rec 1', card, rr(1, 0x3C), 0x9000, data=s_new)
        c.expect('restore EF07 rec 1 -> 9000', card, self.mac_apdu(H('04DC013C'), s_orig, 0x03), 0x9000)
        c.expect('read back restored EF07 rec 1', card, rr(1, 0x3C), 0x9000, data=s_orig)
        c.expect('UPDATE RECORD EF07 rec 4 (absent) -> 6A83', card,
                 self.mac_apdu(H('04DC043C'), H('200100'), 0x03), 0x6A83, silent=True,
                 note='ISO: record not found')
        # no challenge at all after reset
        self.fresh()
        c.expect('UPDATE RECORD with no challenge since reset -> 6984', card,
                 self.mac_apdu(H('04DC0434'), g_orig, 0x03, challenge=b'\x00' * 4), 0x6984)
        # WRITE KEY after personalisation
        tk = self.ks.card_key(0x00)
        plain = bytes([19, 0x08, alg.alg_id, 0x00]) + self.ks.card_key(0x08)
        enc = alg.ecb(tk, pad_m2(plain, alg.bs))
        ch = self.challenge(4)
        hdr = H('84D40008')
        lc = len(enc) + 4
        m = alg.mac(tk, ch, hdr + bytes([lc]) + enc)
        c.expect('WRITE KEY on an ISSUED card (TK MAC) -> 6985', card, hdr + bytes([lc]) + enc + m, 0x6985)

    def g_update_local(self):
        c, card, alg = self.c, self.card, self.alg
        ef02 = self.orig_ef02
        self.fresh()
        self.select_df01()
        new = bytes(range(0xA0, 0xB0))
        c.expect('UPDATE BINARY EF02 (SFI, 04D68200) with UK_L MAC, no PIN -> 9000', card,
                 self.mac_apdu(H('04D68200'), new, 0x12), 0x9000,
                 note='section 2: Write: UK_L MAC (no PIN needed)')
        c.expect('DF01 VERIFY 123456', card, H('0020000003123456'), 0x9000)
        c.expect('read back EF02 0..15', card, H('00B0820010'), 0x9000, data=new)
        c.expect('SELECT EF02', card, sel_fid(0xEF02), 0x9000)
        new2 = bytes(range(0x20, 0x38))
        c.expect('UPDATE BINARY EF02 current EF offset 0020 (04D60020) -> 9000', card,
                 self.mac_apdu(H('04D60020'), new2, 0x12), 0x9000)
        c.expect('read back EF02 0x20..0x37', card, H('00B0002018'), 0x9000, data=new2)
        c.expect('UPDATE BINARY last byte (offset 00FF, 1 byte) -> 9000', card,
                 self.mac_apdu(H('04D600FF'), b'\x5A', 0x12), 0x9000)
        c.expect('read back EF02 00FF', card, H('00B000FF01'), 0x9000, data=b'\x5A')
        c.expect('UPDATE BINARY offset 00F8 + 16 bytes (beyond the file) -> 6A84', card,
                 self.mac_apdu(H('04D600F8'), b'\x11' * 16, 0x12), 0x6A84)
        c.expect('UPDATE BINARY SFI offset F8 + 16 bytes (beyond) -> 6A84', card,
                 self.mac_apdu(H('04D682F8'), b'\x11' * 16, 0x12), 0x6A84)
        c.expect('UPDATE BINARY offset 0100 (beyond) -> 6A84', card,
                 self.mac_apdu(H('04D60100'), b'\x11', 0x12), [0x6A84, 0x6B00], silent=True,
                 note='offset at the end: 6A84 (profile) or 6B00 (ISO offset) tolerated')
        c.expect('EF02 end unchanged after refused writes', card, H('00B000F808'), 0x9000,
                 data=ef02[0xF8:0xFF] + b'\x5A')
        c.expect('UPDATE BINARY wrong MAC -> 6988', card,
                 self.mac_apdu(H('04D60000'), new, 0x12, corrupt=True), 0x6988)
        c.expect('UPDATE BINARY MAC under UK_N (national key on local file) -> 6988', card,
                 self.mac_apdu(H('04D60000'), new, 0x03), 0x6988)
        ch = self.challenge(4)
        c.expect('(intervening READ BINARY)', card, H('00B0000001'), 0x9000)
        c.expect('UPDATE BINARY with consumed challenge -> 6984', card,
                 self.mac_apdu(H('04D60000'), new, 0x12, challenge=ch), 0x6984)
        c.expect('UPDATE BINARY plain CLA 00 (no MAC) -> not 9000', card, H('00D6000004DEADBEEF'),
                 0x6982, silent=True, forbid=[0x9000], note='write must need the UK_L MAC')
        c.expect('restore EF02 (256 bytes in chunks) 0..127', card,
                 self.mac_apdu(H('04D60000'), ef02[:128], 0x12), 0x9000)
        c.expect('restore EF02 128..255', card, self.mac_apdu(H('04D60080'), ef02[128:], 0x12), 0x9000)
        c.expect('read back restored EF02', card, H('00B0000000'), 0x9000, data=ef02)
        # EF01 records
        o1 = self.orig[(1, 1)]
        n1 = H('4008') + H('0102030405060708')
        c.expect('UPDATE RECORD EF01 rec 1 (04DC010C) with UK_L MAC -> 9000', card,
                 self.mac_apdu(H('04DC010C'), n1, 0x12), 0x9000)
        c.expect('read back EF01 rec 1', card, rr(1, 0x0C), 0x9000, data=n1)
        c.expect('UPDATE RECORD EF01 rec 1 other tag (41) -> 6A80', card,
                 self.mac_apdu(H('04DC010C'), H('4108') + b'\x00' * 8, 0x12), 0x6A80)
        c.expect('UPDATE RECORD EF01 rec 1 with UK_N MAC -> 6988', card,
                 self.mac_apdu(H('04DC010C'), o1, 0x03), 0x6988)
        c.expect('UPDATE RECORD on transparent EF02 (SFI 02) -> 6981', card,
                 self.mac_apdu(H('04DC0114'), o1, 0x12), 0x6981, silent=True,
                 note='ISO: not a record file')
        c.expect('restore EF01 rec 1 -> 9000', card, self.mac_apdu(H('04DC010C'), o1, 0x12), 0x9000)
        c.expect('read back restored EF01 rec 1', card, rr(1, 0x0C), 0x9000, data=o1)
        n3 = H('4220') + bytes(range(32))
        c.expect('UPDATE RECORD EF01 rec 3 (34-byte TLV) -> 9000', card,
                 self.mac_apdu(H('04DC030C'), n3, 0x12), 0x9000)
        c.expect('read back EF01 rec 3', card, rr(3, 0x0C), 0x9000, data=n3)
        c.expect('restore EF01 rec 3', card, self.mac_apdu(H('04DC030C'), self.orig[(1, 3)], 0x12), 0x9000)
        c.expect('read back restored EF01 rec 3', card, rr(3, 0x0C), 0x9000, data=self.orig[(1, 3)])

    def g_pin(self):
        c, card = self.c, self.card
        P = lambda s: H(s)

        def vfy(pin):
            return bytes([0x00, 0x20, 0x00, 0x00, len(pin)]) + pin

        def chg(old, new):
            d = old + b'\xFF' + new
            return bytes([0x80, 0x5E, 0x01, 0x00, len(d)]) + d

        WRONG = P('111111')
        self.fresh()
        self.select_df01()
        c.expect('VERIFY 123456 -> 9000', card, vfy(PIN0), 0x9000)
        c.expect('VERIFY wrong -> 63C2', card, vfy(WRONG), 0x63C2)
        c.expect('VERIFY wrong -> 63C1', card, vfy(WRONG), 0x63C1)
        c.expect('VERIFY correct -> 9000 (resets counter)', card, vfy(PIN0), 0x9000)
        c.expect('VERIFY wrong after reset of counter -> 63C2', card, vfy(WRONG), 0x63C2)
        c.expect('VERIFY correct -> 9000', card, vfy(PIN0), 0x9000)
        c.expect('VERIFY Lc=04 (8 digits) -> 6700', card, vfy(P('12345678')), 0x6700)
        c.expect('VERIFY correct -> 9000 (counter full again)', card, vfy(PIN0), 0x9000)
        c.expect('VERIFY P1=01 -> 6A86', card, H('0020010003123456'), 0x6A86)
        c.expect('VERIFY Lc=00 (ISO: tries left) -> 63C3', card, H('0020000000'), 0x63C3, silent=True,
                 note='ISO 7816-4 VERIFY without data')
        # CHANGE PIN (shared counter), in SSSE
        self.fresh()
        NEW = P('654321')
        c.expect('CHANGE PIN 123456 -> 654321 -> 9000', card, chg(PIN0, NEW), 0x9000)
        c.expect('VERIFY 654321 -> 9000', card, vfy(NEW), 0x9000)
        c.expect('VERIFY old 123456 -> 63C2', card, vfy(PIN0), 0x63C2)
        c.expect('CHANGE PIN wrong old -> 63C1 (counter shared with VERIFY)', card, chg(WRONG, PIN0), 0x63C1)
        c.expect('VERIFY 654321 -> 9000 (counter reset)', card, vfy(NEW), 0x9000)
        c.expect('CHANGE PIN wrong old after reset -> 63C2', card, chg(WRONG, PIN0), 0x63C2)
        c.expect('VERIFY wrong -> 63C1 (shared)', card, vfy(WRONG), 0x63C1)
        c.expect('CHANGE PIN 654321 -> 123456 -> 9000 (resets counter)', card, chg(NEW, PIN0), 0x9000)
        c.expect('VERIFY wrong after CHANGE -> 63C2', card, vfy(WRONG), 0x63C2)
        c.expect('VERIFY 123456 -> 9000', card, vfy(PIN0), 0x9000)
        c.expect('CHANGE PIN without FF separator -> 6A80', card,
                 bytes([0x80, 0x5E, 0x01, 0x00, 0x06]) + PIN0 + NEW, 0x6A80, silent=True,
                 note='wrong data')
        c.expect('VERIFY 123456 (PIN unchanged) -> 9000', card, vfy(PIN0), 0x9000)
        # block, then UNBLOCK (in SSSE)
        c.expect('block: VERIFY wrong -> 63C2', card, vfy(WRONG), 0x63C2)
        c.expect('block: VERIFY wrong -> 63C1', card, vfy(WRONG), 0x63C1)
        c.expect('block: VERIFY wrong, last try -> 63C0 or 6983', card, vfy(WRONG), [0x63C0, 0x6983],
                 note='profile: "63Cx wrong (x tries left), 6983 blocked": both read as allowed')
        c.expect('blocked: VERIFY correct -> 6983', card, vfy(PIN0), 0x6983)
        c.expect('blocked: CHANGE PIN correct old -> 6983', card, chg(PIN0, NEW), 0x6983)
        c.expect('UNBLOCK PIN wrong MAC -> 6988', card,
                 self.mac_apdu(H('84240001'), b'', 0x22, corrupt=True), 0x6988)
        c.expect('UNBLOCK PIN MAC under RPK (wrong key) -> 6988', card,
                 self.mac_apdu(H('84240001'), b'', 0x21), 0x6988)
        ch = self.challenge(4)
        c.expect('(intervening READ RECORD)', card, rr(1, 0x2C), 0x9000)
        c.expect('UNBLOCK PIN with consumed challenge -> 6984', card,
                 self.mac_apdu(H('84240001'), b'', 0x22, challenge=ch), 0x6984)
        c.expect('still blocked -> 6983', card, vfy(PIN0), 0x6983)
        c.expect('UNBLOCK PIN with UPK MAC (SSSE) -> 9000', card, self.mac_apdu(H('84240001'), b'', 0x22), 0x9000)
        c.expect('after UNBLOCK: VERIFY wrong -> 63C2 (counter restored)', card, vfy(WRONG), 0x63C2)
        c.expect('after UNBLOCK: VERIFY 123456 -> 9000 (PIN unchanged)', card, vfy(PIN0), 0x9000)
        # block, then RELOAD (in DF01)
        self.fresh()
        self.select_df01()
        for left in (2, 1):
            c.expect('block again: VERIFY wrong -> 63C%d' % left, card, vfy(WRONG), 0x63C0 | left)
        c.expect('block again: VERIFY wrong, last try -> 63C0 or 6983', card, vfy(WRONG), [0x63C0, 0x6983])
        c.expect('blocked (DF01): VERIFY correct -> 6983', card, vfy(PIN0), 0x6983)
        c.expect('blocked PIN does not open DF01: EF01 -> 6982', card, rr(1, 0x0C), 0x6982)
        NP = P('112233')
        c.expect('RELOAD PIN wrong MAC -> 6988', card,
                 self.mac_apdu(H('845E0000'), NP, 0x21, corrupt=True), 0x6988)
        c.expect('RELOAD PIN MAC under UPK (wrong key) -> 6988', card,
                 self.mac_apdu(H('845E0000'), NP, 0x22), 0x6988)
        c.expect('RELOAD PIN 112233 with RPK MAC (DF01) -> 9000', card,
                 self.mac_apdu(H('845E0000'), NP, 0x21), 0x9000)
        c.expect('after RELOAD: VERIFY 123456 -> 63C2 (PIN replaced, counter restored)', card,
                 vfy(PIN0), 0x63C2)
        c.expect('after RELOAD: VERIFY 112233 -> 9000', card, vfy(NP), 0x9000)
        c.expect('new PIN opens DF01: EF01', card, rr(1, 0x0C), 0x9000, data=self.orig[(1, 1)])
        c.expect('RELOAD PIN 4 digits (1234) -> 9000', card, self.mac_apdu(H('845E0000'), P('1234'), 0x21), 0x9000)
        c.expect('VERIFY 1234 (2-byte PIN) -> 9000', card, vfy(P('1234')), 0x9000)
        c.expect('RELOAD PIN 8 digits (outside 2-6) -> 6700', card,
                 self.mac_apdu(H('845E0000'), P('12345678'), 0x21), 0x6700, silent=True,
                 forbid=[0x9000], note='section 3: PIN 2-6 digits; SW for a wrong PIN length not given')
        c.expect('RELOAD PIN 5 digits 12345F -> 9000', card, self.mac_apdu(H('845E0000'), P('12345F'), 0x21),
                 0x9000, silent=True, note='odd digit count padded with F (as in WRITE KEY)')
        c.expect('VERIFY 12345F -> 9000', card, vfy(P('12345F')), 0x9000, silent=True)
        c.expect('restore: RELOAD PIN 123456 with RPK MAC -> 9000', card,
                 self.mac_apdu(H('845E0000'), PIN0, 0x21), 0x9000)
        c.expect('restore: VERIFY wrong -> 63C2 (counter full)', card, vfy(WRONG), 0x63C2)
        c.expect('restore: VERIFY 123456 -> 9000', card, vfy(PIN0), 0x9000)

    def g_psam(self):
        c, p, alg, ks = self.c, self.psam_dev, self.alg, self.ks
        bs = alg.bs
        p.reset()
        c.expect('PSAM SELECT DF01 (00A40000) -> 9000', p, H('00A4000002DF01'), 0x9000)
        c.expect('PSAM SELECT DF01 (00A40200) -> 9000', p, H('00A4020002DF01'), 0x9000)
        c.expect('PSAM SELECT DF02 (absent) -> 6A82', p, H('00A4000002DF02'), 0x6A82, silent=True)
        self.psam.select_df01()

        def ef15_ok(d):
            return (len(d) == 24 and d[11] == alg.alg_id and d[15] == 2 and d[12:15] == H('110100')
                    and bcd_ok(d[:10]) and date_ok(d[16:20]) and date_ok(d[20:24]))
        c.expect('PSAM EF15 (00B0950018): 24 bytes, algorithm %02X, city level 02, region 110100'
                 % alg.alg_id, p, H('00B0950018'), 0x9000, data_fn=ef15_ok)
        c.expect('PSAM EF15 Le 20 > file (T=0 wrong Le) -> 6C18', p, H('00B0950020'), 0x6C18)
        c.expect('PSAM EF15 Le 04 -> first 4 bytes (READ BINARY reads Le bytes)', p, H('00B0950004'),
                 [0x9000, 0x6C18], silent=True,
                 note='is a shorter Le on a transparent file "wrong"? read as a partial read')
        c.expect('PSAM EF16 (00B0960006) -> 6 bytes BCD', p, H('00B0960006'), 0x9000,
                 data_fn=lambda d: len(d) == 6 and bcd_ok(d))
        c.expect('PSAM EF16 Le 08 > file (T=0 wrong Le) -> 6C06', p, H('00B0960008'), 0x6C06)
        c.expect('PSAM EF16 Le 00 (T=0: 256) -> 6C06', p, H('00B0960000'), 0x6C06, silent=True,
                 note='T=0 P3=00 means 256 bytes')
        f = b''.join(ks.psam_factors(self.psam_level))
        c.expect('PSAM DES INIT IRK (801A 08 01, 1 factor) -> 9000', p,
                 bytes([0x80, 0x1A, 0x08, 0x01, len(f)]) + f, 0x9000)
        R = H('0102030405060708')
        c.expect('PSAM DES CRYPT 80FA 00 -> 61%02X' % bs, p,
                 bytes([0x80, 0xFA, 0x00, 0x00, bs]) + alg.pad_block(R), 0x6100 | bs)
        c.expect('PSAM GET RESPONSE wrong Le 04 -> 6C%02X' % bs, p, H('00C0000004'), 0x6C00 | bs)
        c.expect('PSAM GET RESPONSE %02X -> IRK cryptogram = software' % bs, p,
                 bytes([0x00, 0xC0, 0x00, 0x00, bs]), 0x9000,
                 data=alg.cryptogram(ks.card_key(0x08), R))
        c.expect('PSAM GET RESPONSE with nothing pending -> 6985/6F00', p, H('00C0000008'),
                 [0x6985, 0x6F00, 0x6A86, 0x6700], silent=True)
        self.psam.des_init(0x08, ks.psam_factors(self.psam_level))
        two = bytes(range(1, 1 + 2 * bs))
        r = self.psam.encrypt(two)
        c.record('PSAM DES CRYPT 80FA 00 over two blocks = ECB of each block (IRK)',
                 r.sw == 0x9000 and r.data == alg.ecb(ks.card_key(0x08), two), got=repr(r),
                 expected=hx(alg.ecb(ks.card_key(0x08), two)))
        c.expect('PSAM DES INIT with 2 factors at city level -> 6700', p,
                 bytes([0x80, 0x1A, 0x08, 0x01, 16]) + ks.cf + ks.card_factor, 0x6700)
        c.expect('PSAM DES INIT Lc=04 -> 6700', p, H('801A08010499110145'), 0x6700)
        c.expect('PSAM DES INIT unknown key 55 -> 6A88', p,
                 bytes([0x80, 0x1A, 0x55, 0x01, 8]) + ks.card_factor, 0x6A88)
        for kid in (0x0A, 0x03, 0x11, 0x12, 0x21, 0x22):
            r = self.psam.des_init(kid, ks.psam_factors(self.psam_level))
            nm = KEY_NAMES[kid]
            if r.sw != 0x9000:
                national = kid in (0x0A, 0x03)
                c.record('PSAM holds %s' % nm, not national, silent=not national, got='%04X' % r.sw,
                         note=None if national else 'local city keys in the PSAM are optional')
                continue
            rp = self.psam.encrypt(alg.pad_block(R))
            c.record('PSAM %s cryptogram of R = software' % nm, rp.sw == 0x9000 and
                     rp.data == alg.cryptogram(ks.card_key(kid), R), got=repr(rp),
                     expected=hx(alg.cryptogram(ks.card_key(kid), R)))
        if ks.card_factor == H('99110145000000A1'):
            sec9 = H('F1B6C8D273FBAD8B') if bs == 8 else H('6C50CAF32F577BE73E1CE3909AB70FC9')
            self.psam.des_init(0x0A, ks.psam_factors(self.psam_level))
            r = self.psam.encrypt(alg.pad_block(R))
            c.record('PSAM RKSSSE cryptogram of R=0102030405060708 = section 9 value', r.data == sec9,
                     got=repr(r), expected=hx(sec9))
        # MAC
        msg = H('04DC0434070A0131')
        iv = H('11223344') + b'\x00' * (bs - 4)
        mine = alg.mac(ks.card_key(0x03), H('11223344'), msg)
        self.psam.des_init(0x03, ks.psam_factors(self.psam_level))
        r = p.tx(bytes([0x80, 0xFA, 0x05, 0x00, len(iv + msg)]) + iv + msg)
        c.record('PSAM DES CRYPT 80FA 05 (MAC) -> 61xx', r.sw1 == 0x61, got='%04X' % r.sw)
        if r.sw1 == 0x61:
            r = c.expect('PSAM GET RESPONSE -> MAC', p, bytes([0, 0xC0, 0, 0, r.sw & 0xff]), 0x9000,
                         data_fn=lambda d: d[:4] == mine)
            c.record('PSAM MAC length 4 or block', len(r.data) in (4, bs), silent=True,
                     got='%d bytes' % len(r.data), note='profile: "the MAC is the first 4 bytes"')
        if ks.card_factor == H('99110145000000A1'):
            c.record('own UK_N MAC = section 9 value', mine == (H('38F6BDC8') if bs == 8 else H('094E8A38')),
                     got=hx(mine))
        # longer MAC message (UK_L, 40 bytes)
        msg2 = H('04D6820014') + bytes(range(0xA0, 0xB0))
        ch2 = H('A1B2C3D4')
        mine2 = alg.mac(ks.card_key(0x12), ch2, msg2)
        if self.psam.des_init(0x12, ks.psam_factors(self.psam_level)).sw == 0x9000:
            iv2 = ch2 + b'\x00' * (bs - 4)
            r = self.psam.mac(iv2, msg2)
            c.record('PSAM UK_L MAC (80FA 05) = own MAC', r.sw == 0x9000 and r.data[:4] == mine2,
                     got=repr(r), expected=hx(mine2))
        self.psam.des_init(0x08, ks.psam_factors(self.psam_level))
        c.expect('PSAM DES CRYPT 80FA 00 with 7 bytes (not a block multiple) -> 6700', p,
                 H('80FA000007') + b'\x00' * 7, [0x6700, 0x6A80], silent=True)
        c.expect('PSAM DES CRYPT P1=02 -> 6A86', p, bytes([0x80, 0xFA, 0x02, 0x00, bs]) + b'\x00' * bs,
                 0x6A86, silent=True)
        c.expect('PSAM DES INIT key index 02 -> 6A88', p,
                 bytes([0x80, 0x1A, 0x08, 0x02, 8]) + ks.card_factor, 0x6A88, silent=True,
                 note='key index semantics not defined; this terminal uses 01')
        r = self.psam.des_init(0x00, ks.psam_factors(self.psam_level))
        c.record('city PSAM does not hold the manufacturer TK master (801A 00)', r.sw == 0x6A88,
                 silent=True, got='%04X' % r.sw,
                 note='section 6: a PSAM holds master keys at its level (a city PSAM: the city keys)')

    def g_info_flow(self):
        checks = []
        try:
            self.card.reset()
            self.psam_dev.reset()
            info = read_basic_info(self.card, Psam(self.psam_dev), self.psam_level, checks)
            for ch in checks:
                self.c.record('info flow: ' + ch['check'], ch['ok'], got=ch['detail'])
            self.c.record('info flow completes (return code 0)', True, got=unified_line(info))
        except FlowError as e:
            for ch in checks:
                self.c.record('info flow: ' + ch['check'], ch['ok'], got=ch['detail'])
            self.c.record('info flow completes (return code 0)', False, got='%s rc %d %s'
                          % (e.check, e.rc, e.detail))

    # ------------------------------------------------------------------ version 3
    def g_v3_shapes(self):
        """Section 4, field-terminal shapes: INTERNAL AUTHENTICATE P2 00 and 16 bytes, the FCP of
        every EF, SELECT by path, and a plain UPDATE."""
        c, card, alg = self.c, self.card, self.alg
        self.fresh()
        irk = self.ks.card_key(0x08)
        R = secrets.token_bytes(8)
        c.expect('INTERNAL AUTHENTICATE P2=00 (IRK) -> block-size cryptogram', card,
                 H('0088000008') + R + b'\x00', 0x9000, data=alg.cryptogram(irk, R))
        R16 = secrets.token_bytes(16)
        want = alg.ecb(irk, R16)
        c.expect('INTERNAL AUTHENTICATE P2=00 with 16 bytes -> ECB of all 16 under IRK', card,
                 H('0088000010') + R16 + b'\x00', 0x9000, data=want)
        c.expect('INTERNAL AUTHENTICATE P2=08 with 16 bytes -> the same', card,
                 H('0088000810') + R16 + b'\x00', 0x9000, data=want)
        c.expect('INTERNAL AUTHENTICATE 16 bytes, Le 08 -> 6C10', card,
                 H('0088000010') + R16 + b'\x08', 0x6C10)
        self.psam.select_df01()
        r = self.psam.des_init(0x08, self.ks.psam_factors(self.psam_level))
        p = self.psam.encrypt(R16) if r.sw == 0x9000 else r
        c.record('PSAM DES CRYPT of the 16 bytes = the card\'s answer (terminals compare 8)',
                 p.sw == 0x9000 and p.data == want, got=hx(p.data), expected=hx(want))
        c.expect('INTERNAL AUTHENTICATE 12 bytes -> 6700', card,
                 H('008800000C') + R16[:12] + b'\x00', 0x6700)
        longest = lambda spec: max(n for _, n in spec) + 2
        for fid, spec in ((0xEF05, EF05_SPEC), (0xEF06, EF06_SPEC), (0xEF07, EF07_SPEC)):
            c.expect('SELECT %04X with Le -> FCP (linear, max %d, %d records)'
                     % (fid, longest(spec), len(spec)), card, sel_fid(fid, 0, True), 0x9000,
                     data_fn=lambda d, f=fid, s=spec: fcp_ok(d, f, records=(longest(s), len(s))))
        c.expect('SELECT EF06 with Le 05 -> 6Cxx (FCP length)', card, sel_fid(0xEF06) + b'\x05',
                 [0x6C00 | n for n in range(6, 40)])
        c.expect('SELECT DF01', card, sel_fid(0xDF01), 0x9000)
        c.expect('SELECT EF01 with Le -> FCP (linear, max 34, 3 records)', card,
                 sel_fid(0xEF01, 2, True), 0x9000,
                 data_fn=lambda d: fcp_ok(d, 0xEF01, records=(34, 3)))
        c.expect('SELECT EF02 with Le -> FCP (transparent, 256 bytes)', card,
                 sel_fid(0xEF02, 0, True), 0x9000, data_fn=lambda d: fcp_ok(d, 0xEF02, size=256))
        # SELECT by path: P1 09 from the current DF, P1 08 from the MF (FIDs without 3F00).
        self.fresh()
        c.expect('SELECT by path P1=09 from SSSE: EF05 -> FCP', card,
                 H('00A4090002EF0500'), 0x9000, data_fn=lambda d: fcp_ok(d, 0xEF05, records=(18, 7)))
        c.expect('... and EF05 is the current EF: READ RECORD 1 (P2 04)', card, rr(1, 4), 0x9000,
                 data=self.orig[(5, 1)])
        c.expect('SELECT by path P1=09 from SSSE: DF01/EF01 -> FCP', card,
                 H('00A4090004DF01EF0100'), 0x9000,
                 data_fn=lambda d: fcp_ok(d, 0xEF01, records=(34, 3)))
        c.expect('... VERIFY in DF01 (the path made DF01 current)', card, H('0020000003123456'), 0x9000)
        c.expect('... READ RECORD 1 of the current EF01', card, rr(1, 4), 0x9000, data=self.orig[(1, 1)])
        self.fresh()
        c.expect('SELECT by path P1=09 with P2=0C -> 9000, no data', card,
                 H('00A4090C04DF01EF02'), 0x9000, data=b'')
        self.fresh()
        c.expect('SELECT by path P1=08 DF01 (SSSE has no FID) -> 6A82', card,
                 H('00A4080002DF01'), 0x6A82, silent=True,
                 note='section 2: SSSE is selected by AID, so no path from the MF reaches DF01')
        c.expect('SELECT by path through an EF -> 6A82', card, H('00A4090004EF05EF06'), 0x6A82)
        c.expect('SELECT by path with an odd length -> 6700', card, H('00A4090003DF01EF'), 0x6700,
                 silent=True, note='ISO 7816-4: a path is whole FIDs')
        # A plain UPDATE of a line-protected file.
        self.fresh()
        c.expect('UPDATE RECORD EF05 plain CLA 00 -> 6982', card, H('00DC022C03020135'), 0x6982)
        c.expect('... wrote nothing', card, rr(2, 0x2C), 0x9000, data=self.orig[(5, 2)])
        self.select_df01()
        self.verify()
        c.expect('UPDATE BINARY EF02 plain CLA 00 -> 6982', card, H('00D6820004AABBCCDD'), 0x6982)
        c.expect('... wrote nothing', card, H('00B0820004'), 0x9000, data=self.orig_ef02[:4])

    def g_v3_revocation(self):
        """Section 4: a failed check revokes at once (OwnerPIN); only authentication keys
        authenticate."""
        c, card, alg = self.c, self.card, self.alg
        self.fresh()
        self.select_df01()
        c.expect('DF01 VERIFY 123456', card, H('0020000003123456'), 0x9000)
        c.expect('EF01 readable after the PIN', card, rr(1, 0x0C), 0x9000)
        c.expect('wrong VERIFY -> 63C2', card, H('0020000003111111'), 0x63C2)
        c.expect('the wrong VERIFY revoked the PIN: EF01 -> 6982', card, rr(1, 0x0C), 0x6982)
        c.expect('VERIFY 123456 again', card, H('0020000003123456'), 0x9000)
        c.expect('wrong CHANGE PIN -> 63C2', card, H('805E010007111111FF654321'), 0x63C2)
        c.expect('the wrong CHANGE PIN revoked the PIN: EF01 -> 6982', card, rr(1, 0x0C), 0x6982)
        self.ext_auth(0x11, 'EAK_L -> 9000')
        c.expect('EF01 readable after EAK_L', card, rr(1, 0x0C), 0x9000)
        ch = self.challenge(8)
        bad = xor(self.cryptogram(0x11, ch, 'revocation'), b'\x01' + b'\x00' * (alg.bs - 1))
        c.expect('wrong EAK_L cryptogram -> 63C4', card, bytes([0, 0x82, 0, 0x11, alg.bs]) + bad, 0x63C4)
        c.expect('the wrong cryptogram revoked EAK_L: EF01 -> 6982', card, rr(1, 0x0C), 0x6982)
        self.ext_auth(0x11, 'EAK_L -> 9000 (counter full again)')
        # A blocked PIN never counts as verified (EAK_L's grant dropped by a DF change first).
        self.tx(SEL_SSSE)
        self.select_df01()
        c.expect('VERIFY 123456 (PIN granted)', card, H('0020000003123456'), 0x9000)
        for left in (2, 1):
            c.expect('wrong VERIFY -> 63C%d' % left, card, H('0020000003111111'), 0x63C0 | left)
        c.expect('third wrong VERIFY -> 63C0/6983', card, H('0020000003111111'), [0x63C0, 0x6983])
        c.expect('VERIFY 123456 on the blocked PIN -> 6983', card, H('0020000003123456'), 0x6983)
        c.expect('blocked PIN: EF01 -> 6982', card, rr(1, 0x0C), 0x6982)
        c.expect('UNBLOCK PIN (UPK MAC) -> 9000', card, self.mac_apdu(H('84240001'), b'', 0x22), 0x9000)
        c.expect('VERIFY 123456 after UNBLOCK -> 9000', card, H('0020000003123456'), 0x9000)
        # RKSSSE grant and EF07
        self.fresh()
        self.ext_auth(0x0A, 'RKSSSE -> 9000')
        c.expect('EF07 readable after RKSSSE', card, rr(1, 0x3C), 0x9000)
        ch = self.challenge(8)
        bad = xor(self.cryptogram(0x0A, ch, 'revocation'), b'\x01' + b'\x00' * (alg.bs - 1))
        c.expect('wrong RKSSSE cryptogram -> 63C4', card, bytes([0, 0x82, 0, 0x0A, alg.bs]) + bad, 0x63C4)
        c.expect('the wrong cryptogram revoked RKSSSE: EF07 -> 6982', card, rr(1, 0x3C), 0x6982)
        self.ext_auth(0x0A, 'RKSSSE -> 9000 (counter full again)')
        # Only authentication keys authenticate, even with their right cryptogram.
        for kid, in_df01 in ((0x08, False), (0x03, False), (0x12, True), (0x21, True), (0x22, False)):
            self.fresh()
            if in_df01:
                self.select_df01()
            ch = self.challenge(8)
            crypt = alg.cryptogram(self.ks.card_key(kid), ch)
            c.expect('EXTERNAL AUTHENTICATE with %s (right cryptogram) -> 6A88' % KEY_NAMES[kid],
                     card, bytes([0, 0x82, 0, kid, alg.bs]) + crypt, 0x6A88)
        self.fresh()
        self.ext_auth(0x0A, 'RKSSSE counter untouched by the refused KIDs: right -> 9000')

    def g_v3_psam(self):
        """Section 4: EF15/EF16 by FID 0015/0016 and READ BINARY by offset; SELECT by path."""
        c, dev = self.c, self.psam_dev
        dev.reset()
        ef15 = self.psam.exchange(H('00B0950018')).data
        c.expect('PSAM SELECT 0015 (P1 00) -> 9000', dev, H('00A40000020015'), 0x9000)
        c.expect('PSAM READ BINARY offset 0, 24 bytes = EF15', dev, H('00B0000018'), 0x9000, data=ef15)
        c.expect('PSAM READ BINARY offset 0B, 1 byte = the algorithm', dev, H('00B0000B01'), 0x9000,
                 data=ef15[11:12])
        c.expect('PSAM SELECT 0016 (P1 02) -> 9000', dev, H('00A40200020016'), 0x9000)
        c.expect('PSAM READ BINARY offset 0 = EF16 (terminal number)', dev, H('00B0000006'), 0x9000,
                 data=self.psam.exchange(H('00B0960006')).data)
        c.expect('PSAM SELECT DF01 then 0016 -> 9000', dev, H('00A4000002DF01'), 0x9000)
        c.expect('PSAM ... 00A40000 02 0016', dev, H('00A40000020016'), 0x9000)
        c.expect('PSAM ... READ BINARY offset 2, 4 bytes', dev, H('00B0000204'), 0x9000,
                 data=self.psam.exchange(H('00B0960006')).data[2:])
        dev.reset()
        r = self.psam.exchange(H('00A4080002DF01'))
        c.record('PSAM SELECT by path P1=08 DF01 -> 9000 (FCP, profile silent on its content)',
                 r.sw == 0x9000, got='%s %04X' % (hx(r.data), r.sw))
        r = self.psam.des_init(0x08, self.ks.psam_factors(self.psam_level))
        c.record('PSAM DES INIT after DF01 by path -> 9000', r.sw == 0x9000, got='%04X' % r.sw)
        dev.reset()
        r = self.psam.exchange(H('00A40800020016'))
        c.record('PSAM SELECT by path P1=08 0016 -> FCP (transparent, 6 bytes)',
                 r.sw == 0x9000 and fcp_ok(r.data, 0x0016, size=6), got='%s %04X' % (hx(r.data), r.sw))
        c.expect('PSAM ... READ BINARY offset 0 = EF16', dev, H('00B0000006'), 0x9000,
                 data=self.psam.exchange(H('00B0960006')).data)
        dev.reset()
        r = self.psam.exchange(H('00A4080004DF010015'))
        c.record('PSAM SELECT by path P1=08 DF01/0015 -> FCP (transparent, 24 bytes)',
                 r.sw == 0x9000 and fcp_ok(r.data, 0x0015, size=24), got='%s %04X' % (hx(r.data), r.sw),
                 silent=True)
        c.expect('PSAM SELECT by path to an unknown file -> 6A82', dev, H('00A40800020017'), 0x6A82)
        dev.reset()
        self.psam.select_df01()

    def final_state(self):
        """Leave the card as found: PIN 123456 with a full counter, key counters full."""
        c, card = self.c, self.card
        self.card.reset()
        self.select_ssse()
        r = self.verify()
        if r.sw != 0x9000:
            self.tx(self.mac_apdu(H('845E0000'), PIN0, 0x21))
            r = self.verify()
        c.record('final: VERIFY 123456 -> 9000 (counter full)', r.sw == 0x9000, got='%04X' % r.sw)
        c.record('final: RKSSSE ext auth 9000 (counter full)', self.ext_auth_quiet(0x0A).sw == 0x9000)
        self.select_df01()
        c.record('final: EAK_L ext auth 9000 (counter full)', self.ext_auth_quiet(0x11).sw == 0x9000)
        self.card.reset()

    def run(self):
        self.setup()
        for name, fn in (('atr', self.g_atr), ('select', self.g_select),
                         ('read record', self.g_read_record),
                         ('national access', self.g_national_access),
                         ('security loss', self.g_security_loss), ('df01', self.g_df01),
                         ('challenge/external auth', self.g_challenge_extauth),
                         ('internal auth', self.g_internal_auth),
                         ('general status words', self.g_general_sw),
                         ('update national', self.g_update_national),
                         ('update local', self.g_update_local), ('pin', self.g_pin),
                         ('psam', self.g_psam), ('info flow', self.g_info_flow),
                         ('v3 field shapes', self.g_v3_shapes),
                         ('v3 revocation', self.g_v3_revocation),
                         ('v3 psam', self.g_v3_psam),
                         ('final state', self.final_state)):
            self.group(name, fn)
        return self.c.results


# =====================================================================================
# Subcommands
# =====================================================================================
def cmd_selftest(_args):
    res = []

    def chk(name, got, exp):
        res.append({'check': name, 'ok': got == exp, 'got': hx(got), 'expected': hx(exp)})

    k = H('0123456789ABCDEFFEDCBA9876543210')
    chk('SM4 GB/T 32907 encrypt vector', sm4_ecb_enc(k, k), H('681EDF34D206965E86B3E94F536E4246'))
    chk('SM4 decrypt vector', sm4_ecb_dec(k, H('681EDF34D206965E86B3E94F536E4246')), k)
    chk('retail MAC (ICAO 9303 vector)',
        retail_mac(H('7962D9ECE03D1ACD4C76089DCE131543'),
                   H('72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2')),
        H('5F1448EEA8AD90A7'))
    chk('card number check character A1234567 -> 4', card_number_check_char('A1234567').encode(), b'4')
    chk('ISO 7064 MOD 11-2: 11010519491231002X', bytes([ssn_ok('11010519491231002X')]), b'\x01')
    exp = {'3des': ('3A05B201025E1A174D8E1234434646DB', '0A010F9EC0149E2124CC9C7BD8AC63A0',
                    'DB8CD58F23E25FE275581016F929A00E', 'F1B6C8D273FBAD8B',
                    'BABC32C5506BB6C1C087909319BBB924', '38F6BDC8'),
           'sm4': ('AC5C52A85B889BBB4524FDC3464C33EC', '089F501C2F58E43CBC576D273053D503',
                   '4709D23D493AE6A7764C541A920B7D6F', '6C50CAF32F577BE73E1CE3909AB70FC9',
                   'A066474A066BD8DEFF1E4AD6C7942A28', '094E8A38')}
    cic = H('110100D15600000599110145000000A1')
    for a in ('3des', 'sm4'):
        alg = Alg(a)
        ks = KeySet(alg, cic[8:], '110000', '110100')
        e = [H(v) for v in exp[a]]
        chk('%s province factor "110000sh"' % a, ks.pf, H('3131303030307368'))
        chk('%s city factor "110100sx"' % a, ks.cf, H('3131303130307378'))
        chk('%s province RKSSSE' % a, ks.province_key(0x0A), e[0])
        chk('%s city RKSSSE' % a, ks.city_key(0x0A), e[1])
        chk('%s card RKSSSE' % a, ks.card_key(0x0A), e[2])
        chk('%s cryptogram of R=0102030405060708' % a,
            alg.cryptogram(ks.card_key(0x0A), H('0102030405060708')), e[3])
        chk('%s card UK_N' % a, ks.card_key(0x03), e[4])
        chk('%s MAC of 04DC0434 07 0A0131, challenge 11223344' % a,
            alg.mac(ks.card_key(0x03), H('11223344'), H('04DC0434070A0131')), e[5])
    fails = [r['check'] for r in res if not r['ok']]
    print(json.dumps({'command': 'selftest', 'passed': len(res) - len(fails), 'failed': len(fails),
                      'checks': res}, indent=1, ensure_ascii=False))
    for f in fails:
        print('FAILED: ' + f, file=sys.stderr)
    return 0 if not fails else 1


def _open(args, log):
    card = Dev(args.card, 'card', log)
    psam = Dev(args.psam, 'psam', log)
    card.connect()
    psam.connect()
    return card, psam


def read_one(args, log):
    """One read-basic-info session; the card is disconnected (unpowered) afterwards."""
    out = None
    for attempt in range(3):
        checks = []
        card = psam = None
        try:
            card, psam = _open(args, log)
            c0, p0 = card.count, psam.count
            level = {'national': 0, 'province': 1, 'city': 2}[args.psam_level]
            info = read_basic_info(card, Psam(psam), level, checks)
            n_card, n_psam = card.count - c0, psam.count - p0
            out = {'command': 'info', 'return_code': 0, 'fields': info,
                   'unified_output': unified_line(info, args.device_number),
                   'apdu_count': {'card': n_card, 'psam': n_psam, 'total': n_card + n_psam},
                   'checks': checks}
            break
        except FlowError as e:
            out = {'command': 'info', 'return_code': e.rc, 'failed_step': e.check,
                   'detail': e.detail, 'checks': checks}
            break
        except TransportError as e:
            out = {'command': 'info', 'return_code': -11, 'failed_step': 'transport', 'detail': str(e)}
            time.sleep(3)
        finally:
            for d in (card, psam):
                if d is not None:
                    d.close()
    fails = [c['check'] for c in out.get('checks', []) if not c['ok']]
    if out['return_code'] != 0:
        fails.append(out.get('failed_step', 'info flow'))
    return out, fails


def cmd_info(args):
    """`--count N` reads N cards presented one after another in the same reader (a card
    presenter or an operator swapping cards), one JSON object per card in "cards"."""
    results, all_fails = [], []
    for i in range(args.count):
        log = []
        out, fails = read_one(args, log)
        if args.verbose:
            out['apdus'] = log
        results.append(out)
        all_fails += ['card %d: %s' % (i + 1, f) if args.count > 1 else f for f in fails]
    doc = results[0] if args.count == 1 else {'command': 'info', 'cards': results,
                                               'failed': sum(1 for r in results if r['return_code'] != 0
                                                             or not all(c['ok'] for c in r.get('checks', [])))}
    print(json.dumps(doc, indent=1, ensure_ascii=False))
    for f in all_fails:
        print('FAILED: ' + f, file=sys.stderr)
    return 0 if not all_fails else 1


def cmd_conformance(args):
    log = []
    try:
        card, psam = _open(args, log)
        conf = Conformance(card, psam, log)
        results = conf.run()
        alg = conf.alg.name
        notes = conf.notes
    except (TransportError, FlowError) as e:
        print(json.dumps({'command': 'conformance', 'error': str(e)}, indent=1))
        print('FAILED: conformance setup: %s' % e, file=sys.stderr)
        return 2
    hard_fail = [r for r in results if r['status'] == 'FAIL']
    silent_diff = [r for r in results if r['status'] == 'differs (profile silent)']
    summary = {'algorithm': alg, 'checks': len(results),
               'passed': sum(1 for r in results if r['status'].startswith('pass')),
               'failed': len(hard_fail), 'profile_silent_differences': len(silent_diff),
               'apdus': {'card': card.count, 'psam': psam.count}}
    out = {'command': 'conformance', 'summary': summary, 'failed': hard_fail,
           'profile_silent_differences': silent_diff, 'notes': notes}
    if not args.brief:
        out['results'] = results
    if args.verbose:
        out['apdus_log'] = log
    print(json.dumps(out, indent=1, ensure_ascii=False))
    for r in hard_fail:
        print('FAILED: %s (%s -> %s, expected %s)' % (r['check'], r.get('apdu', ''), r.get('got', ''),
                                                      r.get('expected', '')), file=sys.stderr)
    return 0 if not hard_fail else 1


def cmd_model_run(args):
    """Convenience: start the model for each algorithm, run info + conformance, stop it."""
    algs = ['3des', 'sm4'] if args.alg == 'both' else [args.alg]
    rc = 0
    for a in algs:
        proc = subprocess.Popen([args.model, 'serve', '--port', '35973', '--alg', a],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)
            ns = argparse.Namespace(card='Virtual PCD F 00 00', psam='Virtual PCD F 00 01',
                                    psam_level='city', device_number='', verbose=False, brief=True,
                                    count=1)
            print('=== %s: info ===' % a, flush=True)
            rc |= cmd_info(ns)
            print('=== %s: conformance ===' % a, flush=True)
            rc |= cmd_conformance(ns)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return rc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    sub.add_parser('selftest')
    for n in ('info', 'conformance'):
        s = sub.add_parser(n)
        s.add_argument('--card', required=True, help='PC/SC reader name of the SSC')
        s.add_argument('--psam', required=True, help='PC/SC reader name of the PSAM')
        s.add_argument('--verbose', action='store_true', help='include every APDU')
        if n == 'info':
            s.add_argument('--psam-level', choices=['national', 'province', 'city'], default='city',
                           help='level of the PSAM (number of DES INIT factors); default city')
            s.add_argument('--device-number', default='',
                           help='terminal device number for the unified output line')
            s.add_argument('--count', type=int, default=1,
                           help='read this many cards presented one after another')
        else:
            s.add_argument('--brief', action='store_true', help='omit passed checks')
    s = sub.add_parser('model-run')
    s.add_argument('--model', default='/work/indep/bin/sscard-model')
    s.add_argument('--alg', choices=['3des', 'sm4', 'both'], default='both')
    args = ap.parse_args(argv)
    return {'selftest': cmd_selftest, 'info': cmd_info, 'conformance': cmd_conformance,
            'model-run': cmd_model_run}[args.cmd](args)


if __name__ == '__main__':
    sys.exit(main())
