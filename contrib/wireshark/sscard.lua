-- sscard.lua: a Wireshark dissector for China's social security card (the SSSE application)
-- and its PSAM, on top of Wireshark's ISO 7816 dissector. It runs after the other dissectors
-- (a post-dissector) on every frame that holds an ISO 7816 APDU and adds a "Social security
-- card" subtree: the command's name as sscard names it, the file and record (SELECTs are
-- followed per interface), each record's field name and decoded value, key ids, the PSAM's
-- DES INIT and DES CRYPT, the authentication and line-protection steps, and the status word's
-- meaning. PINs, keys and cryptograms under a key are never shown: their bytes are "masked".
--
-- Use:   tshark -X lua_script:sscard.lua -r trace.pcapng -d iso14443.subdissector,iso7816 -O sscard
-- or copy this file to ~/.local/lib/wireshark/plugins/ (docs/wireshark.md).
--
-- The tables between the GENERATED lines are the profile of sscard-core, written by
-- core/src/profile/export.rs; everything after them is the dissecting logic.

-- BEGIN GENERATED
-- Generated from sscard-core's profile tables (core/src/profile/export.rs); do not edit.
-- Regenerate with: SSCARD_REGENERATE=1 cargo test -p sscard-core --lib profile::export
local profile = {}
profile.ssse_aid = "7378312E73682EC9E7BBE1B1A3D5CF"
profile.fid = { mf = 0x3F00, df01 = 0xDF01 }
profile.algorithms = {
  [0x01] = { name = "3DES", spec_version = "2.00", block = 8 },
  [0x03] = { name = "SM4", spec_version = "3.00", block = 16 },
  [0x04] = { name = "AES-128", spec_version = "4.00", block = 16 },
}
profile.life_cycles = { [0x01] = "PERSONALISATION", [0x02] = "ISSUED" }
profile.kids = {
  [0x00] = "TK",
  [0x03] = "UK_N",
  [0x08] = "IRK",
  [0x0A] = "RKSSSE",
  [0x11] = "EAK_L",
  [0x12] = "UK_L",
  [0x21] = "RPK",
  [0x22] = "UPK",
  [0x30] = "PIN",
}
profile.files = {
  { name = "EF05", df = "SSSE", fid = 0xEF05, sfi = 0x05, update_kid = 0x03, records = {
    { number = 1, tag = 0x01, len = 16, field = "card identification code", key = "card_id", encoding = "binary" },
    { number = 2, tag = 0x02, len = 1, field = "card type", key = "card_type", encoding = "ascii" },
    { number = 3, tag = 0x03, len = 4, field = "specification version", key = "spec_version", encoding = "ascii" },
    { number = 4, tag = 0x04, len = 12, field = "initialisation organisation", key = "init_org", encoding = "bcd" },
    { number = 5, tag = 0x05, len = 4, field = "issue date", key = "issue_date", encoding = "date" },
    { number = 6, tag = 0x06, len = 4, field = "expiry date", key = "expiry_date", encoding = "date" },
    { number = 7, tag = 0x07, len = 9, field = "card number", key = "card_number", encoding = "ascii" },
  } },
  { name = "EF06", df = "SSSE", fid = 0xEF06, sfi = 0x06, update_kid = 0x03, records = {
    { number = 1, tag = 0x08, len = 18, field = "social security number", key = "ssn", encoding = "ascii" },
    { number = 2, tag = 0x09, len = 30, field = "name", key = "name", encoding = "gbk" },
    { number = 3, tag = 0x4E, len = 20, field = "name extension", key = "name_extension", encoding = "gbk" },
    { number = 4, tag = 0x0A, len = 1, field = "gender", key = "gender", encoding = "ascii" },
    { number = 5, tag = 0x0B, len = 1, field = "ethnic group", key = "nation", encoding = "bcd" },
    { number = 6, tag = 0x0C, len = 3, field = "birthplace", key = "birthplace", encoding = "bcd" },
    { number = 7, tag = 0x0D, len = 4, field = "birth date", key = "birth_date", encoding = "date" },
  } },
  { name = "EF07", df = "SSSE", fid = 0xEF07, sfi = 0x07, update_kid = 0x03, records = {
    { number = 1, tag = 0x20, len = 1, field = "pension insurance status", key = "pension", encoding = "bcd" },
    { number = 2, tag = 0x21, len = 1, field = "medical insurance status", key = "medical", encoding = "bcd" },
    { number = 3, tag = 0x22, len = 8, field = "medical insurance account", key = "medical_account", encoding = "bcd" },
  } },
  { name = "DF01/EF01", df = "DF01", fid = 0xEF01, sfi = 0x01, update_kid = 0x12, records = {
    { number = 1, tag = 0x40, len = 8, field = "local record 40", key = "local_40", encoding = "binary" },
    { number = 2, tag = 0x41, len = 16, field = "local record 41", key = "local_41", encoding = "binary" },
    { number = 3, tag = 0x42, len = 32, field = "local record 42", key = "local_42", encoding = "binary" },
  } },
  { name = "DF01/EF02", df = "DF01", fid = 0xEF02, sfi = 0x02, update_kid = 0x12, size = 256 },
}
profile.psam = {
  files = {
    { name = "EF15", fid = 0xEF15, short_fid = 0x0015, sfi = 0x15, size = 24 },
    { name = "EF16", fid = 0xEF16, short_fid = 0x0016, sfi = 0x16, size = 6 },
  },
  levels = { [0] = "national", [1] = "province", [2] = "city" },
  des_init = { cla = 0x80, ins = 0x1A, name = "DES INIT" },
  des_crypt = { cla = 0x80, ins = 0xFA, name = "DES CRYPT", encrypt_p1 = 0x00, mac_p1 = 0x05 },
}
profile.commands = {
  interindustry = {
    [0x20] = { name = "VERIFY", secret_command = true, changes_card = true },
    [0x21] = { name = "VERIFY", secret_command = true, changes_card = true },
    [0x24] = { name = "CHANGE REFERENCE DATA", secret_command = true, changes_card = true },
    [0x25] = { name = "CHANGE REFERENCE DATA", secret_command = true, changes_card = true },
    [0x26] = { name = "DISABLE VERIFICATION REQUIREMENT", secret_command = true, changes_card = true },
    [0x28] = { name = "ENABLE VERIFICATION REQUIREMENT", secret_command = true, changes_card = true },
    [0x2C] = { name = "RESET RETRY COUNTER", secret_command = true, changes_card = true },
    [0x2D] = { name = "RESET RETRY COUNTER", secret_command = true, changes_card = true },
    [0x5E] = { name = "CHANGE/RELOAD PIN", secret_command = true, changes_card = true },
    [0x82] = { name = "EXTERNAL AUTHENTICATE", secret_command = true, changes_card = true },
    [0x84] = { name = "GET CHALLENGE" },
    [0x88] = { name = "INTERNAL AUTHENTICATE" },
    [0xA4] = { name = "SELECT" },
    [0xB0] = { name = "READ BINARY" },
    [0xB2] = { name = "READ RECORD" },
    [0xC0] = { name = "GET RESPONSE" },
    [0xD4] = { name = "WRITE KEY", secret_command = true, changes_card = true },
    [0xD6] = { name = "UPDATE BINARY", changes_card = true },
    [0xDC] = { name = "UPDATE RECORD", changes_card = true },
    [0xEE] = { name = "END PERSONALISATION", changes_card = true },
  },
  proprietary = {
    [0x1A] = { name = "DES INIT" },
    [0x20] = { name = "VERIFY", secret_command = true, changes_card = true },
    [0x21] = { name = "VERIFY", secret_command = true, changes_card = true },
    [0x24] = { name = "UNBLOCK PIN", secret_command = true, changes_card = true },
    [0x25] = { name = "CHANGE REFERENCE DATA", secret_command = true, changes_card = true },
    [0x26] = { name = "DISABLE VERIFICATION REQUIREMENT", secret_command = true, changes_card = true },
    [0x28] = { name = "ENABLE VERIFICATION REQUIREMENT", secret_command = true, changes_card = true },
    [0x2C] = { name = "RESET RETRY COUNTER", secret_command = true, changes_card = true },
    [0x2D] = { name = "RESET RETRY COUNTER", secret_command = true, changes_card = true },
    [0x5E] = { name = "CHANGE/RELOAD PIN", secret_command = true, changes_card = true },
    [0x82] = { name = "EXTERNAL AUTHENTICATE", secret_command = true, changes_card = true },
    [0xA4] = { name = "SELECT" },
    [0xB0] = { name = "READ BINARY" },
    [0xB2] = { name = "READ RECORD" },
    [0xC0] = { name = "GET RESPONSE" },
    [0xD4] = { name = "WRITE KEY", secret_command = true, changes_card = true },
    [0xD6] = { name = "UPDATE BINARY", changes_card = true },
    [0xDC] = { name = "UPDATE RECORD", changes_card = true },
    [0xEE] = { name = "END PERSONALISATION", changes_card = true },
    [0xFA] = { name = "DES CRYPT", secret_response = true },
  },
  unknown = "command",
}
profile.status_unknown = "unknown status word"
profile.status_classes = {
  [0x62] = "warning",
  [0x63] = "warning",
  [0x64] = "execution error",
  [0x65] = "execution error",
  [0x66] = "execution error",
  [0x67] = "checking error",
  [0x68] = "checking error",
  [0x69] = "checking error",
  [0x6A] = "checking error",
  [0x6B] = "checking error",
  [0x6D] = "checking error",
  [0x6E] = "checking error",
  [0x6F] = "checking error",
}
profile.status_words = {
  [0x6100] = "256 response bytes available (GET RESPONSE)", [0x6101] = "1 response bytes available (GET RESPONSE)",
  [0x6102] = "2 response bytes available (GET RESPONSE)", [0x6103] = "3 response bytes available (GET RESPONSE)",
  [0x6104] = "4 response bytes available (GET RESPONSE)", [0x6105] = "5 response bytes available (GET RESPONSE)",
  [0x6106] = "6 response bytes available (GET RESPONSE)", [0x6107] = "7 response bytes available (GET RESPONSE)",
  [0x6108] = "8 response bytes available (GET RESPONSE)", [0x6109] = "9 response bytes available (GET RESPONSE)",
  [0x610A] = "10 response bytes available (GET RESPONSE)", [0x610B] = "11 response bytes available (GET RESPONSE)",
  [0x610C] = "12 response bytes available (GET RESPONSE)", [0x610D] = "13 response bytes available (GET RESPONSE)",
  [0x610E] = "14 response bytes available (GET RESPONSE)", [0x610F] = "15 response bytes available (GET RESPONSE)",
  [0x6110] = "16 response bytes available (GET RESPONSE)", [0x6111] = "17 response bytes available (GET RESPONSE)",
  [0x6112] = "18 response bytes available (GET RESPONSE)", [0x6113] = "19 response bytes available (GET RESPONSE)",
  [0x6114] = "20 response bytes available (GET RESPONSE)", [0x6115] = "21 response bytes available (GET RESPONSE)",
  [0x6116] = "22 response bytes available (GET RESPONSE)", [0x6117] = "23 response bytes available (GET RESPONSE)",
  [0x6118] = "24 response bytes available (GET RESPONSE)", [0x6119] = "25 response bytes available (GET RESPONSE)",
  [0x611A] = "26 response bytes available (GET RESPONSE)", [0x611B] = "27 response bytes available (GET RESPONSE)",
  [0x611C] = "28 response bytes available (GET RESPONSE)", [0x611D] = "29 response bytes available (GET RESPONSE)",
  [0x611E] = "30 response bytes available (GET RESPONSE)", [0x611F] = "31 response bytes available (GET RESPONSE)",
  [0x6120] = "32 response bytes available (GET RESPONSE)", [0x6121] = "33 response bytes available (GET RESPONSE)",
  [0x6122] = "34 response bytes available (GET RESPONSE)", [0x6123] = "35 response bytes available (GET RESPONSE)",
  [0x6124] = "36 response bytes available (GET RESPONSE)", [0x6125] = "37 response bytes available (GET RESPONSE)",
  [0x6126] = "38 response bytes available (GET RESPONSE)", [0x6127] = "39 response bytes available (GET RESPONSE)",
  [0x6128] = "40 response bytes available (GET RESPONSE)", [0x6129] = "41 response bytes available (GET RESPONSE)",
  [0x612A] = "42 response bytes available (GET RESPONSE)", [0x612B] = "43 response bytes available (GET RESPONSE)",
  [0x612C] = "44 response bytes available (GET RESPONSE)", [0x612D] = "45 response bytes available (GET RESPONSE)",
  [0x612E] = "46 response bytes available (GET RESPONSE)", [0x612F] = "47 response bytes available (GET RESPONSE)",
  [0x6130] = "48 response bytes available (GET RESPONSE)", [0x6131] = "49 response bytes available (GET RESPONSE)",
  [0x6132] = "50 response bytes available (GET RESPONSE)", [0x6133] = "51 response bytes available (GET RESPONSE)",
  [0x6134] = "52 response bytes available (GET RESPONSE)", [0x6135] = "53 response bytes available (GET RESPONSE)",
  [0x6136] = "54 response bytes available (GET RESPONSE)", [0x6137] = "55 response bytes available (GET RESPONSE)",
  [0x6138] = "56 response bytes available (GET RESPONSE)", [0x6139] = "57 response bytes available (GET RESPONSE)",
  [0x613A] = "58 response bytes available (GET RESPONSE)", [0x613B] = "59 response bytes available (GET RESPONSE)",
  [0x613C] = "60 response bytes available (GET RESPONSE)", [0x613D] = "61 response bytes available (GET RESPONSE)",
  [0x613E] = "62 response bytes available (GET RESPONSE)", [0x613F] = "63 response bytes available (GET RESPONSE)",
  [0x6140] = "64 response bytes available (GET RESPONSE)", [0x6141] = "65 response bytes available (GET RESPONSE)",
  [0x6142] = "66 response bytes available (GET RESPONSE)", [0x6143] = "67 response bytes available (GET RESPONSE)",
  [0x6144] = "68 response bytes available (GET RESPONSE)", [0x6145] = "69 response bytes available (GET RESPONSE)",
  [0x6146] = "70 response bytes available (GET RESPONSE)", [0x6147] = "71 response bytes available (GET RESPONSE)",
  [0x6148] = "72 response bytes available (GET RESPONSE)", [0x6149] = "73 response bytes available (GET RESPONSE)",
  [0x614A] = "74 response bytes available (GET RESPONSE)", [0x614B] = "75 response bytes available (GET RESPONSE)",
  [0x614C] = "76 response bytes available (GET RESPONSE)", [0x614D] = "77 response bytes available (GET RESPONSE)",
  [0x614E] = "78 response bytes available (GET RESPONSE)", [0x614F] = "79 response bytes available (GET RESPONSE)",
  [0x6150] = "80 response bytes available (GET RESPONSE)", [0x6151] = "81 response bytes available (GET RESPONSE)",
  [0x6152] = "82 response bytes available (GET RESPONSE)", [0x6153] = "83 response bytes available (GET RESPONSE)",
  [0x6154] = "84 response bytes available (GET RESPONSE)", [0x6155] = "85 response bytes available (GET RESPONSE)",
  [0x6156] = "86 response bytes available (GET RESPONSE)", [0x6157] = "87 response bytes available (GET RESPONSE)",
  [0x6158] = "88 response bytes available (GET RESPONSE)", [0x6159] = "89 response bytes available (GET RESPONSE)",
  [0x615A] = "90 response bytes available (GET RESPONSE)", [0x615B] = "91 response bytes available (GET RESPONSE)",
  [0x615C] = "92 response bytes available (GET RESPONSE)", [0x615D] = "93 response bytes available (GET RESPONSE)",
  [0x615E] = "94 response bytes available (GET RESPONSE)", [0x615F] = "95 response bytes available (GET RESPONSE)",
  [0x6160] = "96 response bytes available (GET RESPONSE)", [0x6161] = "97 response bytes available (GET RESPONSE)",
  [0x6162] = "98 response bytes available (GET RESPONSE)", [0x6163] = "99 response bytes available (GET RESPONSE)",
  [0x6164] = "100 response bytes available (GET RESPONSE)", [0x6165] = "101 response bytes available (GET RESPONSE)",
  [0x6166] = "102 response bytes available (GET RESPONSE)", [0x6167] = "103 response bytes available (GET RESPONSE)",
  [0x6168] = "104 response bytes available (GET RESPONSE)", [0x6169] = "105 response bytes available (GET RESPONSE)",
  [0x616A] = "106 response bytes available (GET RESPONSE)", [0x616B] = "107 response bytes available (GET RESPONSE)",
  [0x616C] = "108 response bytes available (GET RESPONSE)", [0x616D] = "109 response bytes available (GET RESPONSE)",
  [0x616E] = "110 response bytes available (GET RESPONSE)", [0x616F] = "111 response bytes available (GET RESPONSE)",
  [0x6170] = "112 response bytes available (GET RESPONSE)", [0x6171] = "113 response bytes available (GET RESPONSE)",
  [0x6172] = "114 response bytes available (GET RESPONSE)", [0x6173] = "115 response bytes available (GET RESPONSE)",
  [0x6174] = "116 response bytes available (GET RESPONSE)", [0x6175] = "117 response bytes available (GET RESPONSE)",
  [0x6176] = "118 response bytes available (GET RESPONSE)", [0x6177] = "119 response bytes available (GET RESPONSE)",
  [0x6178] = "120 response bytes available (GET RESPONSE)", [0x6179] = "121 response bytes available (GET RESPONSE)",
  [0x617A] = "122 response bytes available (GET RESPONSE)", [0x617B] = "123 response bytes available (GET RESPONSE)",
  [0x617C] = "124 response bytes available (GET RESPONSE)", [0x617D] = "125 response bytes available (GET RESPONSE)",
  [0x617E] = "126 response bytes available (GET RESPONSE)", [0x617F] = "127 response bytes available (GET RESPONSE)",
  [0x6180] = "128 response bytes available (GET RESPONSE)", [0x6181] = "129 response bytes available (GET RESPONSE)",
  [0x6182] = "130 response bytes available (GET RESPONSE)", [0x6183] = "131 response bytes available (GET RESPONSE)",
  [0x6184] = "132 response bytes available (GET RESPONSE)", [0x6185] = "133 response bytes available (GET RESPONSE)",
  [0x6186] = "134 response bytes available (GET RESPONSE)", [0x6187] = "135 response bytes available (GET RESPONSE)",
  [0x6188] = "136 response bytes available (GET RESPONSE)", [0x6189] = "137 response bytes available (GET RESPONSE)",
  [0x618A] = "138 response bytes available (GET RESPONSE)", [0x618B] = "139 response bytes available (GET RESPONSE)",
  [0x618C] = "140 response bytes available (GET RESPONSE)", [0x618D] = "141 response bytes available (GET RESPONSE)",
  [0x618E] = "142 response bytes available (GET RESPONSE)", [0x618F] = "143 response bytes available (GET RESPONSE)",
  [0x6190] = "144 response bytes available (GET RESPONSE)", [0x6191] = "145 response bytes available (GET RESPONSE)",
  [0x6192] = "146 response bytes available (GET RESPONSE)", [0x6193] = "147 response bytes available (GET RESPONSE)",
  [0x6194] = "148 response bytes available (GET RESPONSE)", [0x6195] = "149 response bytes available (GET RESPONSE)",
  [0x6196] = "150 response bytes available (GET RESPONSE)", [0x6197] = "151 response bytes available (GET RESPONSE)",
  [0x6198] = "152 response bytes available (GET RESPONSE)", [0x6199] = "153 response bytes available (GET RESPONSE)",
  [0x619A] = "154 response bytes available (GET RESPONSE)", [0x619B] = "155 response bytes available (GET RESPONSE)",
  [0x619C] = "156 response bytes available (GET RESPONSE)", [0x619D] = "157 response bytes available (GET RESPONSE)",
  [0x619E] = "158 response bytes available (GET RESPONSE)", [0x619F] = "159 response bytes available (GET RESPONSE)",
  [0x61A0] = "160 response bytes available (GET RESPONSE)", [0x61A1] = "161 response bytes available (GET RESPONSE)",
  [0x61A2] = "162 response bytes available (GET RESPONSE)", [0x61A3] = "163 response bytes available (GET RESPONSE)",
  [0x61A4] = "164 response bytes available (GET RESPONSE)", [0x61A5] = "165 response bytes available (GET RESPONSE)",
  [0x61A6] = "166 response bytes available (GET RESPONSE)", [0x61A7] = "167 response bytes available (GET RESPONSE)",
  [0x61A8] = "168 response bytes available (GET RESPONSE)", [0x61A9] = "169 response bytes available (GET RESPONSE)",
  [0x61AA] = "170 response bytes available (GET RESPONSE)", [0x61AB] = "171 response bytes available (GET RESPONSE)",
  [0x61AC] = "172 response bytes available (GET RESPONSE)", [0x61AD] = "173 response bytes available (GET RESPONSE)",
  [0x61AE] = "174 response bytes available (GET RESPONSE)", [0x61AF] = "175 response bytes available (GET RESPONSE)",
  [0x61B0] = "176 response bytes available (GET RESPONSE)", [0x61B1] = "177 response bytes available (GET RESPONSE)",
  [0x61B2] = "178 response bytes available (GET RESPONSE)", [0x61B3] = "179 response bytes available (GET RESPONSE)",
  [0x61B4] = "180 response bytes available (GET RESPONSE)", [0x61B5] = "181 response bytes available (GET RESPONSE)",
  [0x61B6] = "182 response bytes available (GET RESPONSE)", [0x61B7] = "183 response bytes available (GET RESPONSE)",
  [0x61B8] = "184 response bytes available (GET RESPONSE)", [0x61B9] = "185 response bytes available (GET RESPONSE)",
  [0x61BA] = "186 response bytes available (GET RESPONSE)", [0x61BB] = "187 response bytes available (GET RESPONSE)",
  [0x61BC] = "188 response bytes available (GET RESPONSE)", [0x61BD] = "189 response bytes available (GET RESPONSE)",
  [0x61BE] = "190 response bytes available (GET RESPONSE)", [0x61BF] = "191 response bytes available (GET RESPONSE)",
  [0x61C0] = "192 response bytes available (GET RESPONSE)", [0x61C1] = "193 response bytes available (GET RESPONSE)",
  [0x61C2] = "194 response bytes available (GET RESPONSE)", [0x61C3] = "195 response bytes available (GET RESPONSE)",
  [0x61C4] = "196 response bytes available (GET RESPONSE)", [0x61C5] = "197 response bytes available (GET RESPONSE)",
  [0x61C6] = "198 response bytes available (GET RESPONSE)", [0x61C7] = "199 response bytes available (GET RESPONSE)",
  [0x61C8] = "200 response bytes available (GET RESPONSE)", [0x61C9] = "201 response bytes available (GET RESPONSE)",
  [0x61CA] = "202 response bytes available (GET RESPONSE)", [0x61CB] = "203 response bytes available (GET RESPONSE)",
  [0x61CC] = "204 response bytes available (GET RESPONSE)", [0x61CD] = "205 response bytes available (GET RESPONSE)",
  [0x61CE] = "206 response bytes available (GET RESPONSE)", [0x61CF] = "207 response bytes available (GET RESPONSE)",
  [0x61D0] = "208 response bytes available (GET RESPONSE)", [0x61D1] = "209 response bytes available (GET RESPONSE)",
  [0x61D2] = "210 response bytes available (GET RESPONSE)", [0x61D3] = "211 response bytes available (GET RESPONSE)",
  [0x61D4] = "212 response bytes available (GET RESPONSE)", [0x61D5] = "213 response bytes available (GET RESPONSE)",
  [0x61D6] = "214 response bytes available (GET RESPONSE)", [0x61D7] = "215 response bytes available (GET RESPONSE)",
  [0x61D8] = "216 response bytes available (GET RESPONSE)", [0x61D9] = "217 response bytes available (GET RESPONSE)",
  [0x61DA] = "218 response bytes available (GET RESPONSE)", [0x61DB] = "219 response bytes available (GET RESPONSE)",
  [0x61DC] = "220 response bytes available (GET RESPONSE)", [0x61DD] = "221 response bytes available (GET RESPONSE)",
  [0x61DE] = "222 response bytes available (GET RESPONSE)", [0x61DF] = "223 response bytes available (GET RESPONSE)",
  [0x61E0] = "224 response bytes available (GET RESPONSE)", [0x61E1] = "225 response bytes available (GET RESPONSE)",
  [0x61E2] = "226 response bytes available (GET RESPONSE)", [0x61E3] = "227 response bytes available (GET RESPONSE)",
  [0x61E4] = "228 response bytes available (GET RESPONSE)", [0x61E5] = "229 response bytes available (GET RESPONSE)",
  [0x61E6] = "230 response bytes available (GET RESPONSE)", [0x61E7] = "231 response bytes available (GET RESPONSE)",
  [0x61E8] = "232 response bytes available (GET RESPONSE)", [0x61E9] = "233 response bytes available (GET RESPONSE)",
  [0x61EA] = "234 response bytes available (GET RESPONSE)", [0x61EB] = "235 response bytes available (GET RESPONSE)",
  [0x61EC] = "236 response bytes available (GET RESPONSE)", [0x61ED] = "237 response bytes available (GET RESPONSE)",
  [0x61EE] = "238 response bytes available (GET RESPONSE)", [0x61EF] = "239 response bytes available (GET RESPONSE)",
  [0x61F0] = "240 response bytes available (GET RESPONSE)", [0x61F1] = "241 response bytes available (GET RESPONSE)",
  [0x61F2] = "242 response bytes available (GET RESPONSE)", [0x61F3] = "243 response bytes available (GET RESPONSE)",
  [0x61F4] = "244 response bytes available (GET RESPONSE)", [0x61F5] = "245 response bytes available (GET RESPONSE)",
  [0x61F6] = "246 response bytes available (GET RESPONSE)", [0x61F7] = "247 response bytes available (GET RESPONSE)",
  [0x61F8] = "248 response bytes available (GET RESPONSE)", [0x61F9] = "249 response bytes available (GET RESPONSE)",
  [0x61FA] = "250 response bytes available (GET RESPONSE)", [0x61FB] = "251 response bytes available (GET RESPONSE)",
  [0x61FC] = "252 response bytes available (GET RESPONSE)", [0x61FD] = "253 response bytes available (GET RESPONSE)",
  [0x61FE] = "254 response bytes available (GET RESPONSE)", [0x61FF] = "255 response bytes available (GET RESPONSE)",
  [0x6200] = "warning: state of non-volatile memory unchanged",
  [0x6281] = "warning: part of returned data may be corrupted",
  [0x6282] = "warning: end of file or record reached before reading Le bytes",
  [0x63C0] = "verification failed, 0 tries left", [0x63C1] = "verification failed, 1 tries left",
  [0x63C2] = "verification failed, 2 tries left", [0x63C3] = "verification failed, 3 tries left",
  [0x63C4] = "verification failed, 4 tries left", [0x63C5] = "verification failed, 5 tries left",
  [0x63C6] = "verification failed, 6 tries left", [0x63C7] = "verification failed, 7 tries left",
  [0x63C8] = "verification failed, 8 tries left", [0x63C9] = "verification failed, 9 tries left",
  [0x63CA] = "verification failed, 10 tries left", [0x63CB] = "verification failed, 11 tries left",
  [0x63CC] = "verification failed, 12 tries left", [0x63CD] = "verification failed, 13 tries left",
  [0x63CE] = "verification failed, 14 tries left", [0x63CF] = "verification failed, 15 tries left",
  [0x6581] = "memory failure", [0x6700] = "wrong length", [0x6881] = "logical channel not supported",
  [0x6882] = "secure messaging not supported",
  [0x6981] = "command incompatible with file structure (not a record file)", [0x6982] = "security status not satisfied",
  [0x6983] = "authentication method blocked", [0x6984] = "reference data not usable (no challenge)",
  [0x6985] = "conditions of use not satisfied", [0x6986] = "command not allowed (no current EF)",
  [0x6988] = "incorrect secure messaging data object (MAC wrong)", [0x6A80] = "incorrect parameters in the data field",
  [0x6A81] = "function not supported", [0x6A82] = "file or application not found", [0x6A83] = "record not found",
  [0x6A84] = "not enough memory space in the file", [0x6A86] = "incorrect parameters P1-P2",
  [0x6A88] = "referenced data or key not found", [0x6B00] = "wrong parameters P1-P2 (offset outside the file)",
  [0x6C00] = "wrong Le: 0 bytes available", [0x6C01] = "wrong Le: 1 bytes available",
  [0x6C02] = "wrong Le: 2 bytes available", [0x6C03] = "wrong Le: 3 bytes available",
  [0x6C04] = "wrong Le: 4 bytes available", [0x6C05] = "wrong Le: 5 bytes available",
  [0x6C06] = "wrong Le: 6 bytes available", [0x6C07] = "wrong Le: 7 bytes available",
  [0x6C08] = "wrong Le: 8 bytes available", [0x6C09] = "wrong Le: 9 bytes available",
  [0x6C0A] = "wrong Le: 10 bytes available", [0x6C0B] = "wrong Le: 11 bytes available",
  [0x6C0C] = "wrong Le: 12 bytes available", [0x6C0D] = "wrong Le: 13 bytes available",
  [0x6C0E] = "wrong Le: 14 bytes available", [0x6C0F] = "wrong Le: 15 bytes available",
  [0x6C10] = "wrong Le: 16 bytes available", [0x6C11] = "wrong Le: 17 bytes available",
  [0x6C12] = "wrong Le: 18 bytes available", [0x6C13] = "wrong Le: 19 bytes available",
  [0x6C14] = "wrong Le: 20 bytes available", [0x6C15] = "wrong Le: 21 bytes available",
  [0x6C16] = "wrong Le: 22 bytes available", [0x6C17] = "wrong Le: 23 bytes available",
  [0x6C18] = "wrong Le: 24 bytes available", [0x6C19] = "wrong Le: 25 bytes available",
  [0x6C1A] = "wrong Le: 26 bytes available", [0x6C1B] = "wrong Le: 27 bytes available",
  [0x6C1C] = "wrong Le: 28 bytes available", [0x6C1D] = "wrong Le: 29 bytes available",
  [0x6C1E] = "wrong Le: 30 bytes available", [0x6C1F] = "wrong Le: 31 bytes available",
  [0x6C20] = "wrong Le: 32 bytes available", [0x6C21] = "wrong Le: 33 bytes available",
  [0x6C22] = "wrong Le: 34 bytes available", [0x6C23] = "wrong Le: 35 bytes available",
  [0x6C24] = "wrong Le: 36 bytes available", [0x6C25] = "wrong Le: 37 bytes available",
  [0x6C26] = "wrong Le: 38 bytes available", [0x6C27] = "wrong Le: 39 bytes available",
  [0x6C28] = "wrong Le: 40 bytes available", [0x6C29] = "wrong Le: 41 bytes available",
  [0x6C2A] = "wrong Le: 42 bytes available", [0x6C2B] = "wrong Le: 43 bytes available",
  [0x6C2C] = "wrong Le: 44 bytes available", [0x6C2D] = "wrong Le: 45 bytes available",
  [0x6C2E] = "wrong Le: 46 bytes available", [0x6C2F] = "wrong Le: 47 bytes available",
  [0x6C30] = "wrong Le: 48 bytes available", [0x6C31] = "wrong Le: 49 bytes available",
  [0x6C32] = "wrong Le: 50 bytes available", [0x6C33] = "wrong Le: 51 bytes available",
  [0x6C34] = "wrong Le: 52 bytes available", [0x6C35] = "wrong Le: 53 bytes available",
  [0x6C36] = "wrong Le: 54 bytes available", [0x6C37] = "wrong Le: 55 bytes available",
  [0x6C38] = "wrong Le: 56 bytes available", [0x6C39] = "wrong Le: 57 bytes available",
  [0x6C3A] = "wrong Le: 58 bytes available", [0x6C3B] = "wrong Le: 59 bytes available",
  [0x6C3C] = "wrong Le: 60 bytes available", [0x6C3D] = "wrong Le: 61 bytes available",
  [0x6C3E] = "wrong Le: 62 bytes available", [0x6C3F] = "wrong Le: 63 bytes available",
  [0x6C40] = "wrong Le: 64 bytes available", [0x6C41] = "wrong Le: 65 bytes available",
  [0x6C42] = "wrong Le: 66 bytes available", [0x6C43] = "wrong Le: 67 bytes available",
  [0x6C44] = "wrong Le: 68 bytes available", [0x6C45] = "wrong Le: 69 bytes available",
  [0x6C46] = "wrong Le: 70 bytes available", [0x6C47] = "wrong Le: 71 bytes available",
  [0x6C48] = "wrong Le: 72 bytes available", [0x6C49] = "wrong Le: 73 bytes available",
  [0x6C4A] = "wrong Le: 74 bytes available", [0x6C4B] = "wrong Le: 75 bytes available",
  [0x6C4C] = "wrong Le: 76 bytes available", [0x6C4D] = "wrong Le: 77 bytes available",
  [0x6C4E] = "wrong Le: 78 bytes available", [0x6C4F] = "wrong Le: 79 bytes available",
  [0x6C50] = "wrong Le: 80 bytes available", [0x6C51] = "wrong Le: 81 bytes available",
  [0x6C52] = "wrong Le: 82 bytes available", [0x6C53] = "wrong Le: 83 bytes available",
  [0x6C54] = "wrong Le: 84 bytes available", [0x6C55] = "wrong Le: 85 bytes available",
  [0x6C56] = "wrong Le: 86 bytes available", [0x6C57] = "wrong Le: 87 bytes available",
  [0x6C58] = "wrong Le: 88 bytes available", [0x6C59] = "wrong Le: 89 bytes available",
  [0x6C5A] = "wrong Le: 90 bytes available", [0x6C5B] = "wrong Le: 91 bytes available",
  [0x6C5C] = "wrong Le: 92 bytes available", [0x6C5D] = "wrong Le: 93 bytes available",
  [0x6C5E] = "wrong Le: 94 bytes available", [0x6C5F] = "wrong Le: 95 bytes available",
  [0x6C60] = "wrong Le: 96 bytes available", [0x6C61] = "wrong Le: 97 bytes available",
  [0x6C62] = "wrong Le: 98 bytes available", [0x6C63] = "wrong Le: 99 bytes available",
  [0x6C64] = "wrong Le: 100 bytes available", [0x6C65] = "wrong Le: 101 bytes available",
  [0x6C66] = "wrong Le: 102 bytes available", [0x6C67] = "wrong Le: 103 bytes available",
  [0x6C68] = "wrong Le: 104 bytes available", [0x6C69] = "wrong Le: 105 bytes available",
  [0x6C6A] = "wrong Le: 106 bytes available", [0x6C6B] = "wrong Le: 107 bytes available",
  [0x6C6C] = "wrong Le: 108 bytes available", [0x6C6D] = "wrong Le: 109 bytes available",
  [0x6C6E] = "wrong Le: 110 bytes available", [0x6C6F] = "wrong Le: 111 bytes available",
  [0x6C70] = "wrong Le: 112 bytes available", [0x6C71] = "wrong Le: 113 bytes available",
  [0x6C72] = "wrong Le: 114 bytes available", [0x6C73] = "wrong Le: 115 bytes available",
  [0x6C74] = "wrong Le: 116 bytes available", [0x6C75] = "wrong Le: 117 bytes available",
  [0x6C76] = "wrong Le: 118 bytes available", [0x6C77] = "wrong Le: 119 bytes available",
  [0x6C78] = "wrong Le: 120 bytes available", [0x6C79] = "wrong Le: 121 bytes available",
  [0x6C7A] = "wrong Le: 122 bytes available", [0x6C7B] = "wrong Le: 123 bytes available",
  [0x6C7C] = "wrong Le: 124 bytes available", [0x6C7D] = "wrong Le: 125 bytes available",
  [0x6C7E] = "wrong Le: 126 bytes available", [0x6C7F] = "wrong Le: 127 bytes available",
  [0x6C80] = "wrong Le: 128 bytes available", [0x6C81] = "wrong Le: 129 bytes available",
  [0x6C82] = "wrong Le: 130 bytes available", [0x6C83] = "wrong Le: 131 bytes available",
  [0x6C84] = "wrong Le: 132 bytes available", [0x6C85] = "wrong Le: 133 bytes available",
  [0x6C86] = "wrong Le: 134 bytes available", [0x6C87] = "wrong Le: 135 bytes available",
  [0x6C88] = "wrong Le: 136 bytes available", [0x6C89] = "wrong Le: 137 bytes available",
  [0x6C8A] = "wrong Le: 138 bytes available", [0x6C8B] = "wrong Le: 139 bytes available",
  [0x6C8C] = "wrong Le: 140 bytes available", [0x6C8D] = "wrong Le: 141 bytes available",
  [0x6C8E] = "wrong Le: 142 bytes available", [0x6C8F] = "wrong Le: 143 bytes available",
  [0x6C90] = "wrong Le: 144 bytes available", [0x6C91] = "wrong Le: 145 bytes available",
  [0x6C92] = "wrong Le: 146 bytes available", [0x6C93] = "wrong Le: 147 bytes available",
  [0x6C94] = "wrong Le: 148 bytes available", [0x6C95] = "wrong Le: 149 bytes available",
  [0x6C96] = "wrong Le: 150 bytes available", [0x6C97] = "wrong Le: 151 bytes available",
  [0x6C98] = "wrong Le: 152 bytes available", [0x6C99] = "wrong Le: 153 bytes available",
  [0x6C9A] = "wrong Le: 154 bytes available", [0x6C9B] = "wrong Le: 155 bytes available",
  [0x6C9C] = "wrong Le: 156 bytes available", [0x6C9D] = "wrong Le: 157 bytes available",
  [0x6C9E] = "wrong Le: 158 bytes available", [0x6C9F] = "wrong Le: 159 bytes available",
  [0x6CA0] = "wrong Le: 160 bytes available", [0x6CA1] = "wrong Le: 161 bytes available",
  [0x6CA2] = "wrong Le: 162 bytes available", [0x6CA3] = "wrong Le: 163 bytes available",
  [0x6CA4] = "wrong Le: 164 bytes available", [0x6CA5] = "wrong Le: 165 bytes available",
  [0x6CA6] = "wrong Le: 166 bytes available", [0x6CA7] = "wrong Le: 167 bytes available",
  [0x6CA8] = "wrong Le: 168 bytes available", [0x6CA9] = "wrong Le: 169 bytes available",
  [0x6CAA] = "wrong Le: 170 bytes available", [0x6CAB] = "wrong Le: 171 bytes available",
  [0x6CAC] = "wrong Le: 172 bytes available", [0x6CAD] = "wrong Le: 173 bytes available",
  [0x6CAE] = "wrong Le: 174 bytes available", [0x6CAF] = "wrong Le: 175 bytes available",
  [0x6CB0] = "wrong Le: 176 bytes available", [0x6CB1] = "wrong Le: 177 bytes available",
  [0x6CB2] = "wrong Le: 178 bytes available", [0x6CB3] = "wrong Le: 179 bytes available",
  [0x6CB4] = "wrong Le: 180 bytes available", [0x6CB5] = "wrong Le: 181 bytes available",
  [0x6CB6] = "wrong Le: 182 bytes available", [0x6CB7] = "wrong Le: 183 bytes available",
  [0x6CB8] = "wrong Le: 184 bytes available", [0x6CB9] = "wrong Le: 185 bytes available",
  [0x6CBA] = "wrong Le: 186 bytes available", [0x6CBB] = "wrong Le: 187 bytes available",
  [0x6CBC] = "wrong Le: 188 bytes available", [0x6CBD] = "wrong Le: 189 bytes available",
  [0x6CBE] = "wrong Le: 190 bytes available", [0x6CBF] = "wrong Le: 191 bytes available",
  [0x6CC0] = "wrong Le: 192 bytes available", [0x6CC1] = "wrong Le: 193 bytes available",
  [0x6CC2] = "wrong Le: 194 bytes available", [0x6CC3] = "wrong Le: 195 bytes available",
  [0x6CC4] = "wrong Le: 196 bytes available", [0x6CC5] = "wrong Le: 197 bytes available",
  [0x6CC6] = "wrong Le: 198 bytes available", [0x6CC7] = "wrong Le: 199 bytes available",
  [0x6CC8] = "wrong Le: 200 bytes available", [0x6CC9] = "wrong Le: 201 bytes available",
  [0x6CCA] = "wrong Le: 202 bytes available", [0x6CCB] = "wrong Le: 203 bytes available",
  [0x6CCC] = "wrong Le: 204 bytes available", [0x6CCD] = "wrong Le: 205 bytes available",
  [0x6CCE] = "wrong Le: 206 bytes available", [0x6CCF] = "wrong Le: 207 bytes available",
  [0x6CD0] = "wrong Le: 208 bytes available", [0x6CD1] = "wrong Le: 209 bytes available",
  [0x6CD2] = "wrong Le: 210 bytes available", [0x6CD3] = "wrong Le: 211 bytes available",
  [0x6CD4] = "wrong Le: 212 bytes available", [0x6CD5] = "wrong Le: 213 bytes available",
  [0x6CD6] = "wrong Le: 214 bytes available", [0x6CD7] = "wrong Le: 215 bytes available",
  [0x6CD8] = "wrong Le: 216 bytes available", [0x6CD9] = "wrong Le: 217 bytes available",
  [0x6CDA] = "wrong Le: 218 bytes available", [0x6CDB] = "wrong Le: 219 bytes available",
  [0x6CDC] = "wrong Le: 220 bytes available", [0x6CDD] = "wrong Le: 221 bytes available",
  [0x6CDE] = "wrong Le: 222 bytes available", [0x6CDF] = "wrong Le: 223 bytes available",
  [0x6CE0] = "wrong Le: 224 bytes available", [0x6CE1] = "wrong Le: 225 bytes available",
  [0x6CE2] = "wrong Le: 226 bytes available", [0x6CE3] = "wrong Le: 227 bytes available",
  [0x6CE4] = "wrong Le: 228 bytes available", [0x6CE5] = "wrong Le: 229 bytes available",
  [0x6CE6] = "wrong Le: 230 bytes available", [0x6CE7] = "wrong Le: 231 bytes available",
  [0x6CE8] = "wrong Le: 232 bytes available", [0x6CE9] = "wrong Le: 233 bytes available",
  [0x6CEA] = "wrong Le: 234 bytes available", [0x6CEB] = "wrong Le: 235 bytes available",
  [0x6CEC] = "wrong Le: 236 bytes available", [0x6CED] = "wrong Le: 237 bytes available",
  [0x6CEE] = "wrong Le: 238 bytes available", [0x6CEF] = "wrong Le: 239 bytes available",
  [0x6CF0] = "wrong Le: 240 bytes available", [0x6CF1] = "wrong Le: 241 bytes available",
  [0x6CF2] = "wrong Le: 242 bytes available", [0x6CF3] = "wrong Le: 243 bytes available",
  [0x6CF4] = "wrong Le: 244 bytes available", [0x6CF5] = "wrong Le: 245 bytes available",
  [0x6CF6] = "wrong Le: 246 bytes available", [0x6CF7] = "wrong Le: 247 bytes available",
  [0x6CF8] = "wrong Le: 248 bytes available", [0x6CF9] = "wrong Le: 249 bytes available",
  [0x6CFA] = "wrong Le: 250 bytes available", [0x6CFB] = "wrong Le: 251 bytes available",
  [0x6CFC] = "wrong Le: 252 bytes available", [0x6CFD] = "wrong Le: 253 bytes available",
  [0x6CFE] = "wrong Le: 254 bytes available", [0x6CFF] = "wrong Le: 255 bytes available",
  [0x6D00] = "instruction code not supported", [0x6E00] = "class not supported", [0x6F00] = "no precise diagnosis",
  [0x9000] = "success",
}
-- END GENERATED

local sscard = Proto("sscard", "Social security card")

local F = {
  command = ProtoField.string("sscard.command", "Command"),
  psam_command = ProtoField.string("sscard.psam.command", "PSAM command"),
  response_to = ProtoField.framenum("sscard.response_to", "Response to", base.NONE, frametype.REQUEST),
  fetched_for = ProtoField.framenum("sscard.fetched_for", "Answer of the command in", base.NONE, frametype.REQUEST),
  file = ProtoField.string("sscard.file", "File"),
  record = ProtoField.uint8("sscard.record", "Record", base.DEC),
  tag = ProtoField.uint8("sscard.tag", "Tag", base.HEX),
  field = ProtoField.string("sscard.field", "Field"),
  value = ProtoField.string("sscard.value", "Value"),
  offset = ProtoField.uint16("sscard.offset", "Offset", base.DEC),
  kid = ProtoField.uint8("sscard.kid", "Key id", base.HEX, profile.kids),
  key_index = ProtoField.uint8("sscard.key_index", "Key index", base.HEX),
  factor = ProtoField.string("sscard.factor", "Diversification factor"),
  step = ProtoField.string("sscard.step", "Step"),
  random = ProtoField.bytes("sscard.random", "Random"),
  cryptogram = ProtoField.bytes("sscard.cryptogram", "Cryptogram"),
  iv = ProtoField.bytes("sscard.iv", "IV (the card's challenge, zero-padded)"),
  mac_input = ProtoField.bytes("sscard.mac_input", "MAC input"),
  mac = ProtoField.bytes("sscard.mac", "MAC"),
  secret = ProtoField.string("sscard.secret", "Secret"),
  algorithm = ProtoField.string("sscard.algorithm", "Algorithm"),
  life_cycle = ProtoField.string("sscard.life_cycle", "Life cycle"),
  sw = ProtoField.uint16("sscard.sw", "Status word", base.HEX),
  sw_meaning = ProtoField.string("sscard.sw.meaning", "Meaning"),
}
sscard.fields = {}
for _, f in pairs(F) do table.insert(sscard.fields, f) end

local f_cla = Field.new("iso7816.apdu.cla")
local f_sw1 = Field.new("iso7816.apdu.sw1")
local f_body = Field.new("iso7816.apdu.body")
local f_resp_to = Field.new("iso7816.resp_to")
local f_if_id = Field.new("frame.interface_id")
local f_if_name = Field.new("frame.interface_name")

-- What the first pass learnt, by frame number: the items each frame shows.
local frames = {}
-- Per interface (one card each): its role (`card`, `psam`) when the interface name gives it, the
-- selected DF and EF, the life cycle, the PSAM's block size and initialised key, the last
-- command, and a command whose answer waits for GET RESPONSE (61xx).
local interfaces = {}

function sscard.init()
  frames = {}
  interfaces = {}
end

local function hex(range)
  if range == nil or range:len() == 0 then return "" end
  return tostring(range:bytes()):upper()
end

local function command_info(cla, ins)
  local by_class = (bit.band(cla, 0x80) ~= 0) and profile.commands.proprietary or profile.commands.interindustry
  return by_class[ins] or { name = profile.commands.unknown, changes_card = true }
end

local function sw_meaning(sw)
  return profile.status_words[sw] or profile.status_classes[bit.rshift(sw, 8)] or profile.status_unknown
end

local function kid_name(id)
  return profile.kids[id] or string.format("key %02X", id)
end

-- The id of a key by its name (`TK`, `RPK`).
local function kid_by_name(name)
  for id, n in pairs(profile.kids) do
    if n == name then return id end
  end
  return nil
end

local function by_value(t, value)
  for k, v in pairs(t) do
    if v == value then return k end
  end
  return nil
end

local PERSONALISATION = by_value(profile.life_cycles, "PERSONALISATION")
local ISSUED = by_value(profile.life_cycles, "ISSUED")

-- The key whose MAC protects a write to `f`: its update key once issued, TK before.
local function update_key_name(state, f)
  if state.life_cycle ~= nil and state.life_cycle == PERSONALISATION then return "TK" end
  if f ~= nil then return kid_name(f.update_kid) end
  return "the file's update key"
end

local function card_file_by(df, key, value)
  for _, f in ipairs(profile.files) do
    if (df == nil or f.df == df) and f[key] == value then return f end
  end
  return nil
end

local function psam_file_by(key, value)
  for _, f in ipairs(profile.psam.files) do
    if f[key] == value then return f end
  end
  return nil
end

-- The EF a READ/UPDATE with this SFI addresses: a card EF of the current DF, one of another DF
-- when the DF is not known, or the PSAM's EF15/EF16.
local function file_by_sfi(state, sfi)
  if sfi == 0 then return state.ef end
  return card_file_by(state.df, "sfi", sfi) or card_file_by(nil, "sfi", sfi)
    or psam_file_by("sfi", sfi)
end

local function record_by(file, key, value)
  if file == nil or file.records == nil then return nil end
  for _, r in ipairs(file.records) do
    if r[key] == value then return r end
  end
  return nil
end

local function all_zero(range)
  for i = 0, range:len() - 1 do
    if range(i, 1):uint() ~= 0 then return false end
  end
  return true
end

local function digits(range)
  local h = hex(range)
  if h:find("[^0-9]") then return nil, h end
  return h
end

-- A record value as the profile encodes it: ASCII and GBK without padding, BCD as digits, dates
-- as YYYY-MM-DD, binary as hex; "(not written)" when all zero.
local function decode_value(rec, range)
  if range:len() == 0 or all_zero(range) then return "(not written)" end
  local enc = rec.encoding
  if enc == "binary" then return hex(range) end
  if enc == "ascii" then
    local n = range:len()
    while n > 0 and range(n - 1, 1):uint() == 0 do n = n - 1 end
    local text = range(0, n)
    for i = 0, n - 1 do
      local b = text(i, 1):uint()
      if b < 0x20 or b > 0x7E then return "not ASCII: " .. hex(range) end
    end
    return text:string(ENC_ASCII)
  end
  if enc == "bcd" or enc == "date" then
    local d, raw = digits(range)
    if d == nil then return "not BCD: " .. raw end
    if enc == "date" and #d == 8 then
      return d:sub(1, 4) .. "-" .. d:sub(5, 6) .. "-" .. d:sub(7, 8)
    end
    return d
  end
  if enc == "gbk" then
    local n = 0
    while n < range:len() and range(n, 1):uint() ~= 0 do n = n + 1 end
    if n == 0 then return "(not written)" end
    -- TvbRange:string() of Wireshark 4.0 cuts its UTF-8 result to the input's byte count
    -- (a GBK character of 2 bytes is 3 in UTF-8); stringz() does not, so decode a copy of the
    -- text that ends with its NUL.
    local text = range(0, n):bytes()
    text:append(ByteArray.new("00"))
    return text:tvb("GBK text"):range(0, n + 1):stringz(ENC_GB18030)
  end
  return hex(range)
end

local function file_label(f)
  if f == nil then return nil end
  if profile.psam.files[1] == f or profile.psam.files[2] == f then return "PSAM " .. f.name end
  return f.name
end

-- An item the frame shows: a field, the byte range (offset, length) in the APDU it comes from,
-- its value, and children.
local function item(field, off, len, value, children)
  return { field = field, off = off, len = len, value = value, children = children }
end

-- The record TLVs of a READ RECORD(S) answer or an UPDATE RECORD's data.
local function record_items(items, file, range, base_off)
  local i = 0
  while i + 2 <= range:len() do
    local tag = range(i, 1):uint()
    local len = range(i + 1, 1):uint()
    if i + 2 + len > range:len() then break end
    local value = (len > 0) and range(i + 2, len) or nil
    local rec = record_by(file, "tag", tag)
    local children = {}
    local summary
    if rec ~= nil then
      table.insert(children, item(F.record, base_off + i, 1, rec.number))
      table.insert(children, item(F.tag, base_off + i, 1, tag))
      table.insert(children, item(F.field, base_off + i, 2 + len, rec.field))
      local text = value and decode_value(rec, value) or "(empty)"
      table.insert(children, item(F.value, base_off + i + 2, len, text))
      summary = string.format("#%d %s = %s", rec.number, rec.field, text)
    else
      table.insert(children, item(F.tag, base_off + i, 1, tag))
      table.insert(children, item(F.value, base_off + i + 2, len, value and hex(value) or ""))
      summary = string.format("tag %02X = %s", tag, value and hex(value) or "")
    end
    table.insert(items, item(nil, base_off + i, 2 + len, "Record " .. summary, children))
    i = i + 2 + len
  end
end

-- A BER-TLV walk of an FCI or FCP: the leaves, by tag.
local function tlv_leaves(range, out, base_off)
  local i = 0
  while i + 2 <= range:len() do
    local first = range(i, 1):uint()
    local tlen = 1
    if bit.band(first, 0x1F) == 0x1F then tlen = 2 end
    if i + tlen + 1 > range:len() then return end
    local tag = range(i, tlen):uint()
    local len = range(i + tlen, 1):uint()
    local llen = 1
    if len == 0x81 and i + tlen + 2 <= range:len() then
      len = range(i + tlen + 1, 1):uint()
      llen = 2
    end
    local vstart = i + tlen + llen
    if vstart + len > range:len() then return end
    -- 9F0C is the profile's proprietary template around the algorithm id.
    if len == 0 then
      -- nothing inside
    elseif bit.band(first, 0x20) ~= 0 or tag == 0x9F0C then
      tlv_leaves(range(vstart, len), out, base_off + vstart)
    else
      out[tag] = { off = base_off + vstart, len = len, range = range(vstart, len) }
    end
    i = vstart + len
  end
end

-- The parts of a command APDU (short or extended): header, data range and its offset, Le.
local function parse_command(apdu)
  local n = apdu:len()
  local c = { cla = apdu(0, 1):uint(), ins = (n > 1) and apdu(1, 1):uint() or 0 }
  c.p1 = (n > 2) and apdu(2, 1):uint() or 0
  c.p2 = (n > 3) and apdu(3, 1):uint() or 0
  c.data_off, c.data_len = 5, 0
  if n == 5 then
    c.le = apdu(4, 1):uint()
    if c.le == 0 then c.le = 256 end
  elseif n > 5 then
    local lc = apdu(4, 1):uint()
    if lc == 0 and n >= 7 then
      lc = apdu(5, 2):uint()
      c.data_off = 7
    end
    c.data_len = math.min(lc, n - c.data_off)
    local rest = n - c.data_off - c.data_len
    if rest >= 1 and rest <= 3 then
      c.le = apdu(n - rest, rest):uint()
      if c.le == 0 then c.le = (rest == 1) and 256 or 65536 end
    end
  end
  if c.data_len > 0 then c.data = apdu(c.data_off, c.data_len) end
  return c
end

local function state_of(key)
  local s = interfaces[key]
  if s == nil then
    s = {}
    interfaces[key] = s
  end
  return s
end

-- Where a SELECT leads from the interface's current DF: { df = , ef = , label = }.
local function select_target(state, c)
  if c.data == nil then return nil end
  if c.p1 == 0x04 then
    if hex(c.data) == profile.ssse_aid then return { df = "SSSE", label = "SSSE" } end
    return { df = "AID " .. hex(c.data), label = "AID " .. hex(c.data) }
  end
  local target = { df = state.df, ef = nil }
  if c.p1 == 0x08 then target.df = "MF" end
  local i = 0
  while i + 2 <= c.data:len() do
    local fid = c.data(i, 2):uint()
    if fid == profile.fid.mf then
      target = { df = "MF", label = "MF" }
    elseif fid == profile.fid.df01 then
      -- DF01 is the card's local extension under SSSE and the PSAM's security application
      -- under its MF; sscard names its interfaces `card …` and `psam …`.
      if state.role == "card" or (state.role ~= "psam" and target.df == "SSSE") then
        target = { df = "DF01", label = "DF01" }
      else
        target = { df = "PSAM DF01", label = "PSAM DF01" }
      end
    else
      local f = card_file_by(target.df, "fid", fid) or psam_file_by("fid", fid) or psam_file_by("short_fid", fid)
      target = { df = target.df, ef = f, label = file_label(f) or string.format("%04X", fid) }
    end
    i = i + 2
  end
  return target
end

local function add_kid(info, off, id, step)
  local items = info.items
  info.kid = kid_name(id)
  table.insert(items, item(F.kid, off, 1, id))
  if step ~= nil then table.insert(items, item(F.step, off, 1, step)) end
end

-- What a command frame shows, and what its answer needs to know (first pass only).
local function analyse_command(apdu, key, role)
  local state = state_of(key)
  state.role = state.role or role
  local c = parse_command(apdu)
  local ci = command_info(c.cla, c.ins)
  local info = { kind = "command", c = c, ci = ci, items = {}, name = ci.name }
  local items = info.items
  local d = c.data_off
  if c.ins == profile.psam.des_init.ins and c.cla == profile.psam.des_init.cla
      or c.ins == profile.psam.des_crypt.ins and c.cla == profile.psam.des_crypt.cla then
    info.psam = true
  end
  table.insert(items, item(F.command, 0, 2, ci.name))
  if info.psam then table.insert(items, item(F.psam_command, 0, 2, ci.name)) end

  local ins = c.ins
  if ins == 0xA4 then
    local t = select_target(state, c)
    info.select = t
    if t ~= nil then
      info.file = t.label
      table.insert(items, item(F.file, d, c.data_len, t.label))
    end
  elseif ins == 0xB2 or ins == 0xDC then
    local f = file_by_sfi(state, bit.rshift(c.p2, 3))
    info.target = f
    info.file = file_label(f)
    if info.file then table.insert(items, item(F.file, 3, 1, info.file)) end
    local mode = bit.band(c.p2, 0x07)
    if mode == 4 or mode == 5 then
      -- An UPDATE RECORD's number shows with its TLV below.
      if ins == 0xB2 then table.insert(items, item(F.record, 2, 1, c.p1)) end
      info.record = (mode == 5) and string.format("#%d to last", c.p1) or string.format("#%d", c.p1)
    elseif mode == 0 then
      local r = record_by(f, "tag", c.p1)
      table.insert(items, item(F.tag, 2, 1, c.p1))
      if r then
        table.insert(items, item(F.record, 2, 1, r.number))
        info.record = string.format("#%d", r.number)
      end
    end
    if ins == 0xDC and c.data ~= nil then
      local tlv_len = c.data_len
      if bit.band(c.cla, 0x04) ~= 0 and tlv_len >= 4 then tlv_len = tlv_len - 4 end
      if tlv_len > 0 then record_items(items, f, c.data(0, tlv_len), d) end
      if tlv_len < c.data_len then
        table.insert(items, item(F.mac, d + tlv_len, 4))
        table.insert(items, item(F.step, 0, 1, "line-protected write, MAC under " ..
          update_key_name(state, f)))
      end
    end
  elseif ins == 0xB0 or ins == 0xD6 then
    local f, off
    if bit.band(c.p1, 0x80) ~= 0 then
      f = file_by_sfi(state, bit.band(c.p1, 0x1F))
      off = c.p2
    else
      f = state.ef
      off = c.p1 * 256 + c.p2
    end
    info.target = f
    info.file = file_label(f)
    if info.file then table.insert(items, item(F.file, 2, 1, info.file)) end
    table.insert(items, item(F.offset, 2, 2, off))
    info.offset = off
    if ins == 0xD6 and c.data ~= nil and bit.band(c.cla, 0x04) ~= 0 and c.data_len >= 4 then
      table.insert(items, item(F.mac, d + c.data_len - 4, 4))
      table.insert(items, item(F.step, 0, 1, "line-protected write, MAC under " ..
        update_key_name(state, f)))
    end
  elseif ins == 0x84 then
    local le = c.le or 0
    local why = (le == 4) and "challenge for a line-protection MAC"
      or (le == 8) and "challenge for external authentication" or "challenge"
    table.insert(items, item(F.step, 4, 1, why))
  elseif ins == 0x88 then
    -- P2 00 means IRK (PROFILE section 4, field-terminal shapes).
    local id = (c.p2 == 0) and kid_by_name("IRK") or c.p2
    add_kid(info, 3, id, "internal authentication: the card proves it is genuine")
    if c.data ~= nil then table.insert(items, item(F.random, d, c.data_len)) end
  elseif ins == 0x82 then
    add_kid(info, 3, c.p2, "external authentication with " .. kid_name(c.p2))
  elseif ins == 0xD4 then
    add_kid(info, 3, c.p2, "load key " .. kid_name(c.p2) .. " (encrypted under TK)")
  elseif ins == 0xEE then
    table.insert(items, item(F.step, 0, 2, "end of personalisation, MAC under TK"))
  elseif ins == 0x20 or ins == 0x21 then
    table.insert(items, item(F.step, 0, 2, "PIN verification"))
  elseif ins == 0x5E then
    table.insert(items, item(F.step, 0, 2, (bit.band(c.cla, 0x04) ~= 0) and
      "reload PIN, MAC under " .. "RPK" or "change PIN"))
  elseif ins == 0x24 and bit.band(c.cla, 0x80) ~= 0 then
    table.insert(items, item(F.step, 0, 2, "unblock PIN, MAC under " .. "UPK"))
  elseif info.psam and ins == profile.psam.des_init.ins then
    add_kid(info, 2, c.p1, "PSAM: derive the card's " .. kid_name(c.p1) .. " from " ..
      tostring(math.floor(c.data_len / 8)) .. " factor(s)")
    table.insert(items, item(F.key_index, 3, 1, c.p2))
    local n = math.floor(c.data_len / 8)
    for i = 0, n - 1 do
      local fr = c.data(i * 8, 8)
      local text = hex(fr)
      local printable = true
      for j = 0, 7 do
        local b = fr(j, 1):uint()
        if b < 0x20 or b > 0x7E then printable = false end
      end
      if printable then text = text .. " \"" .. fr:string(ENC_ASCII) .. "\"" end
      table.insert(items, item(F.factor, d + i * 8, 8, text))
    end
    state.kid = c.p1
  elseif info.psam and ins == profile.psam.des_crypt.ins then
    if state.kid then info.kid = kid_name(state.kid) end
    if c.p1 == profile.psam.des_crypt.mac_p1 then
      local block = state.block or 8
      table.insert(items, item(F.step, 2, 1, "PSAM: MAC for line protection under " ..
        (state.kid and kid_name(state.kid) or "the initialised key")))
      if c.data ~= nil and c.data_len > block then
        table.insert(items, item(F.iv, d, block))
        table.insert(items, item(F.mac_input, d + block, c.data_len - block))
      end
    else
      table.insert(items, item(F.step, 2, 1, "PSAM: cryptogram under " ..
        (state.kid and kid_name(state.kid) or "the initialised key")))
      if c.data ~= nil then table.insert(items, item(F.random, d, c.data_len)) end
    end
  elseif ins == 0xC0 and state.pending ~= nil then
    info.fetches = state.pending
    info.of = "of " .. state.pending.name
    table.insert(items, item(F.fetched_for, 0, 2, state.pending.frame))
    table.insert(items, item(F.step, 0, 2, "fetch the answer of " .. state.pending.name))
    state.pending = nil
  end
  if ci.secret_command and c.data ~= nil then
    table.insert(items, item(F.secret, d, c.data_len, string.format("masked (%d bytes)", c.data_len)))
  end
  return info
end

-- The PSAM's EF15 (PROFILE section 6): serial BCD(10), version, algorithm, region BCD(3), level,
-- start and expiry dates BCD(4).
local EF15_LAYOUT = {
  { "serial number", 0, 10, "bcd" }, { "version", 10, 1, "binary" },
  { "algorithm", 11, 1, "algorithm" }, { "issuer region", 12, 3, "bcd" },
  { "key level", 15, 1, "level" }, { "start date", 16, 4, "date" }, { "expiry date", 20, 4, "date" },
}

local function field_items(items, name, off, len, text)
  table.insert(items, item(nil, off, len, name .. " = " .. text, {
    item(F.field, off, len, name), item(F.value, off, len, text) }))
end

-- What a response frame shows, given the command it answers.
local function analyse_response(data, data_off, sw, sw_off, key, cmd)
  local state = state_of(key)
  local info = { kind = "response", items = {}, sw = sw, name = "?" }
  local items = info.items
  if cmd ~= nil then
    info.name = cmd.name
    info.file = cmd.file
    info.record = cmd.record
    info.kid = cmd.kid
    info.of = cmd.of
    table.insert(items, item(F.response_to, sw_off, 2, cmd.frame))
    table.insert(items, item(F.command, sw_off, 2, cmd.name))
    if cmd.psam then table.insert(items, item(F.psam_command, sw_off, 2, cmd.name)) end
    if cmd.file then table.insert(items, item(F.file, sw_off, 2, cmd.file)) end
  end
  table.insert(items, item(F.sw, sw_off, 2, sw))
  table.insert(items, item(F.sw_meaning, sw_off, 2, sw_meaning(sw)))
  local ok = (sw == 0x9000) or (bit.rshift(sw, 8) == 0x61)
  if cmd == nil then return info end
  -- GET RESPONSE answers for the command that asked for it.
  local origin = cmd.fetches or cmd
  local c, ins = origin.c, origin.c.ins
  if bit.rshift(sw, 8) == 0x61 then
    state.pending = origin
  end
  if sw == 0x9000 and ins == 0xEE then state.life_cycle = ISSUED end
  if ok and cmd.select ~= nil then
    state.df = cmd.select.df
    state.ef = cmd.select.ef
  elseif ok and (ins == 0xB2 or ins == 0xB0) and origin.target ~= nil then
    state.ef = origin.target
  end
  if data == nil then return info end
  local n = data:len()
  if origin.ci.secret_response then
    table.insert(items, item(F.secret, data_off, n, string.format("masked (%d bytes)", n)))
    if cmd.fetches then
      table.insert(items, item(F.step, data_off, n, (origin.c.p1 == profile.psam.des_crypt.mac_p1)
        and "the PSAM's MAC" or "the PSAM's cryptogram"))
    end
    return info
  end
  if ins == 0xA4 then
    local leaves = {}
    tlv_leaves(data, leaves, data_off)
    if leaves[0x84] then
      local name = hex(leaves[0x84].range)
      if name == profile.ssse_aid then name = "SSSE" end
      field_items(items, "DF name", leaves[0x84].off, leaves[0x84].len, name)
    end
    if leaves[0x86] and leaves[0x86].len == 1 then
      local id = leaves[0x86].range:uint()
      local alg = profile.algorithms[id]
      local text = alg and string.format("%s (%s)", alg.name, alg.spec_version) or string.format("unknown (%02X)", id)
      table.insert(items, item(F.algorithm, leaves[0x86].off, 1, text))
      if alg then state.block = alg.block end
    end
    if leaves[0xC0] and leaves[0xC0].len == 1 then
      local lc = leaves[0xC0].range:uint()
      state.life_cycle = lc
      table.insert(items, item(F.life_cycle, leaves[0xC0].off, 1,
        profile.life_cycles[lc] or string.format("unknown (%02X)", lc)))
    end
    if leaves[0x82] then
      local kind = leaves[0x82].range(0, 1):uint()
      field_items(items, "file descriptor", leaves[0x82].off, leaves[0x82].len,
        (kind == 0x02) and "transparent" or (kind == 0x04) and "linear records" or hex(leaves[0x82].range))
    end
    if leaves[0x83] then field_items(items, "FID", leaves[0x83].off, leaves[0x83].len, hex(leaves[0x83].range)) end
    if leaves[0x80] and leaves[0x80].len <= 4 then
      field_items(items, "size", leaves[0x80].off, leaves[0x80].len, tostring(leaves[0x80].range:uint()))
    end
  elseif ins == 0xB2 then
    record_items(items, origin.target, data, data_off)
  elseif ins == 0xB0 then
    local f = origin.target
    if f ~= nil and f.name == "EF15" and (origin.offset or 0) == 0 and n >= f.size then
      for _, l in ipairs(EF15_LAYOUT) do
        local r = data(l[2], l[3])
        local text
        if l[4] == "algorithm" then
          local alg = profile.algorithms[r:uint()]
          text = alg and alg.name or string.format("unknown (%02X)", r:uint())
          if alg then state.block = alg.block end
        elseif l[4] == "level" then
          text = profile.psam.levels[r:uint()] or string.format("unknown (%02X)", r:uint())
        else
          text = decode_value({ encoding = l[4] }, r)
        end
        field_items(items, l[1], data_off + l[2], l[3], text)
      end
    elseif f ~= nil and f.name == "EF16" and (origin.offset or 0) == 0 and n >= f.size then
      field_items(items, "terminal number", data_off, f.size, decode_value({ encoding = "bcd" }, data(0, f.size)))
    else
      table.insert(items, item(F.value, data_off, n, hex(data)))
    end
  elseif ins == 0x84 then
    table.insert(items, item(F.random, data_off, n))
  elseif ins == 0x88 then
    table.insert(items, item(F.cryptogram, data_off, n))
    table.insert(items, item(F.step, data_off, n, "the card's cryptogram, for the terminal to check"))
  else
    table.insert(items, item(F.value, data_off, n, hex(data)))
  end
  return info
end

local function summary(info)
  local parts = { info.name }
  if info.file then table.insert(parts, info.file) end
  if info.record then table.insert(parts, info.record) end
  if info.kid then table.insert(parts, info.kid) end
  if info.of then table.insert(parts, info.of) end
  return table.concat(parts, " ")
end

local function render(items, tree, apdu)
  for _, it in ipairs(items) do
    local range = nil
    if it.len > 0 and it.off + it.len <= apdu:len() then range = apdu(it.off, it.len) end
    local node
    if it.field == nil then
      node = range and tree:add(sscard, range, it.value) or tree:add(sscard, apdu, it.value)
      node:set_text(it.value)
    elseif range ~= nil and it.value == nil then
      node = tree:add(it.field, range)
    elseif range ~= nil then
      node = tree:add(it.field, range, it.value)
    else
      node = tree:add(it.field, apdu, it.value)
      node:set_generated()
    end
    if it.children then render(it.children, node, apdu) end
  end
end

function sscard.dissector(tvb, pinfo, tree)
  local cla = f_cla()
  local sw1 = f_sw1()
  if cla == nil and sw1 == nil then return end
  local info = frames[pinfo.number]
  local src = (cla or sw1).source
  if src == nil then return end
  if not pinfo.visited or info == nil then
    local id = f_if_id()
    local name = f_if_name()
    local key = id and tostring(id.value) or "0"
    local role = name and tostring(name.value):match("^(%a+) ") or nil
    if cla ~= nil then
      local apdu = src:range(cla.offset)
      info = analyse_command(apdu, key, role)
      info.frame = pinfo.number
      info.start = cla.offset
      state_of(key).last = info
    else
      local body = f_body()
      if sw1.offset + 2 > src:len() then return end
      local start = body and body.offset or sw1.offset
      local apdu = src:range(start, sw1.offset + 2 - start)
      local sw = apdu(sw1.offset - start, 2):uint()
      local to = f_resp_to()
      local cmd = to and frames[to.value] or state_of(key).last
      local data = body and apdu(0, body.len) or nil
      info = analyse_response(data, 0, sw, sw1.offset - start, key, cmd)
      info.start = start
      info.stop = sw1.offset + 2
    end
    frames[pinfo.number] = info
  end
  local apdu = info.stop and src:range(info.start, info.stop - info.start) or src:range(info.start)
  local label = (info.kind == "command") and summary(info)
    or string.format("response to %s: %04X %s", summary(info), info.sw, sw_meaning(info.sw))
  local subtree = tree:add(sscard, apdu, "Social security card: " .. label)
  render(info.items, subtree, apdu)
  pinfo.cols.info:append(" [" .. label .. "]")
end

register_postdissector(sscard)
