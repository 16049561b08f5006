// Builds corpus.json: GPP and US Privacy strings, each with what the IAB's reference
// library (@iabgpp/cmpapi) makes of it, and what the service must answer. The service's
// decoding is held against every entry by tests/gpp_differential.rs.
//
//   node generate.mjs           rewrite corpus.json
//   node generate.mjs --check   fail if the library no longer agrees with corpus.json
//
// The corpus is deterministic: the same library version gives the same file.

import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GppModel, HeaderV1, Sections, UspV1 } from "@iabgpp/cmpapi";

const CORPUS = fileURLToPath(new URL("./corpus.json", import.meta.url));
const LIBRARY = JSON.parse(
  readFileSync(new URL("./node_modules/@iabgpp/cmpapi/package.json", import.meta.url)),
).version;

// ---------------------------------------------------------------------------------------
// What the library says about a string.

/** The US sections whose opt-outs the gate reads (names as the library spells them). */
const US_SECTIONS = new Set([
  "uspv1", "usnat", "usca", "usva", "usco", "usut", "usct", "usfl", "usmt", "usor",
  "ustx", "usde", "usia", "usne", "usnh", "usnj", "ustn", "usmn",
]);

/** Sections the library reads but the service cannot decode yet: refused, not ignored,
 * so that an opt-out in them is never dropped silently. */
const UNREADABLE = new Set(["usmd", "usin", "usky", "usri"]);

/** The section versions whose layout is known (usnat has two). */
const KNOWN_VERSIONS = { usnat: [1, 2] };

const USP_SPEC = /^1[YN-]{3}$/;

function errorOf(e) {
  return `${e.name}: ${e.message}`;
}

/** The opt-outs in a decoded section, as the gate reads them. */
function optOuts(name, section, into) {
  if (name === "uspv1") {
    into.sale ||= section.OptOutSale === "Y";
    return;
  }
  into.sale ||= section.SaleOptOut === 1;
  into.sharing ||= section.SharingOptOut === 1;
  into.targeted_advertising ||= section.TargetedAdvertisingOptOut === 1;
  into.gpc ||= section.GpcSegmentIncluded !== false && section.Gpc === true;
}

/** A section's core sub-section as the library writes it for a version: its length in
 * characters, and the bits its fields take (usnat v1 leaves out ten of v2's). */
function coreShape(name, version) {
  const model = new GppModel();
  model.setFieldValue(name, "Version", version);
  model.setFieldValue(name, "MspaCoveredTransaction", 1);
  const length = model.encodeSection(name).split(".")[0].length;
  const { segments } = model.sections.get(name);
  const segment = segments[0];
  let bits = name === "usnat" && version === 1 ? -10 : 0;
  for (const field of segment.getFieldNames()) {
    const f = segment.fields.get(field);
    bits += f.bitStringLength ?? f.elementBitStringLength * f.numElements;
  }
  return { length, bits, segments: segments.length };
}

/** Where the service is deliberately stricter than the library, the reason (else null). */
function stricterRule(name, section, text) {
  if (name === "uspv1") {
    // The library reads the part before any `.`, and its four characters unchecked.
    return USP_SPEC.test(text)
      ? null
      : "a US Privacy string is `1` then Y, N or - three times (the library reads any four characters)";
  }
  if (UNREADABLE.has(name)) {
    return `the ${name} section cannot be read by the service yet, so it is refused rather than ignored`;
  }
  const known = KNOWN_VERSIONS[name] ?? (US_SECTIONS.has(name) ? [1] : null);
  if (known && !known.includes(section.Version)) {
    return `${name} version ${section.Version} is not a published version (the library reads it with the layout of another)`;
  }
  if (known && text !== undefined) {
    const { length, bits, segments } = coreShape(name, section.Version);
    const core = text.split(".")[0];
    if (text.split(".").length > segments) {
      return `the ${name} section has ${text.split(".").length} sub-sections where the library reads ${segments} (it skips the others)`;
    }
    if (core.length > length) {
      return `the ${name} v${section.Version} core sub-section has ${core.length} characters where the library writes ${length}`;
    }
    if (core.length * 6 < bits) {
      return `the ${name} v${section.Version} core sub-section has ${core.length * 6} bits where its fields take ${bits} (the library reads it with an older layout)`;
    }
  }
  if (section.GpcSegmentType !== undefined && section.GpcSegmentType !== 1) {
    return `the ${name} sub-section is of type ${section.GpcSegmentType}, not GPC's 1 (the library does not look at the type)`;
  }
  // The library checks field values when they are set, not when they are decoded: a
  // value its own validator refuses (a two-bit field of 3, an MSPA flag of 0) is refused.
  for (const [field, value] of Object.entries(section)) {
    try {
      new GppModel().setFieldValue(name, field, value);
    } catch (e) {
      if (e.name === "ValidationError") {
        return `${name} ${field} = ${JSON.stringify(value)} is refused by the library's own validator`;
      }
    }
  }
  return null;
}

function gppVerdict(input) {
  const library = {
    accepted: false, read: [], ignored: [],
    sale: false, sharing: false, targeted_advertising: false, gpc: false,
  };
  let stricter = null;
  try {
    if (input.length === 0) {
      // The library answers an empty string with an empty model.
      stricter = "an empty string carries no GPP header";
    } else if (!input.startsWith("D")) {
      // The library reads a bare TCF EU string (no header) as a TCF EU section.
      stricter = "a GPP string starts with its header";
    }
    const model = new GppModel(input);
    model.getHeader(); // decodes the envelope: header, section count, blank sections
    const parts = input.split("~");
    const ids = input.startsWith("D") ? new HeaderV1(parts[0]).getFieldValue("SectionIds") : [2];
    for (const [i, id] of ids.entries()) {
      const name = Sections.SECTION_ID_NAME_MAP.get(id);
      if (!name || !model.hasSection(name)) {
        library.ignored.push(id);
        continue;
      }
      const section = model.getSection(name); // decodes every field of the section
      stricter ??= stricterRule(name, section, input.startsWith("D") ? parts[i + 1] : input);
      if (US_SECTIONS.has(name) || UNREADABLE.has(name)) {
        library.read.push(name);
        optOuts(name, section, library);
      } else {
        library.ignored.push(id);
      }
    }
    library.accepted = true;
  } catch (e) {
    return { library: { accepted: false, error: errorOf(e) }, service: { accepted: false } };
  }
  return { library, service: stricter ? { accepted: false, stricter } : { accepted: true } };
}

function uspVerdict(input) {
  try {
    if (input.length === 0) {
      return {
        library: { accepted: true, sale: false },
        service: { accepted: false, stricter: "an empty string is not a US Privacy string" },
      };
    }
    const section = new UspV1(input).toObj();
    const stricter = stricterRule("uspv1", section, input);
    return {
      library: { accepted: true, sale: section.OptOutSale === "Y" },
      service: stricter ? { accepted: false, stricter } : { accepted: true },
    };
  } catch (e) {
    return { library: { accepted: false, error: errorOf(e) }, service: { accepted: false } };
  }
}

// ---------------------------------------------------------------------------------------
// Strings built with the library.

/** A small deterministic generator (mulberry32), so that the corpus does not drift. */
function random(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = random(20261123);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];

function encode(sections) {
  const model = new GppModel();
  for (const [name, fields] of sections) {
    for (const [field, value] of Object.entries(fields)) model.setFieldValue(name, field, value);
  }
  return model.encode();
}

const FIXED_DATE = new Date("2024-05-01T00:00:00Z");
// Setting a TCF field stamps the section with today's date, so the dates are set last.
const TCF_EU = ["tcfeuv2", {
  CmpId: 31, CmpVersion: 640, ConsentLanguage: "EN", VendorListVersion: 126,
  PurposeConsents: [true, false, true], VendorConsents: [2, 6, 8], PublisherCountryCode: "DE",
  Created: FIXED_DATE, LastUpdated: FIXED_DATE,
}];
const TCF_CA = ["tcfcav1", {
  CmpId: 50, CmpVersion: 2, ConsentLanguage: "FR", VendorListVersion: 12,
  PurposesExpressConsent: [true, true], VendorExpressConsent: [12, 24],
  Created: FIXED_DATE, LastUpdated: FIXED_DATE,
}];

/** Each US section with the opt-out fields it has and whether it has a GPC segment. */
const STATES = {
  usnat: { sharing: true, targeted: true, gpc: true },
  usca: { sharing: true, targeted: false, gpc: true },
  usva: { sharing: false, targeted: true, gpc: false },
  usco: { sharing: false, targeted: true, gpc: true },
  usut: { sharing: false, targeted: true, gpc: false },
  usct: { sharing: false, targeted: true, gpc: true },
};

function usSection(name, sale, sharing, targeted, gpc, version) {
  const shape = STATES[name];
  const fields = { SaleOptOutNotice: sale === 0 ? 0 : 1, SaleOptOut: sale, MspaCoveredTransaction: pick([1, 2]) };
  if (version) fields.Version = version;
  if (shape.sharing) {
    fields.SharingOptOutNotice = sharing === 0 ? 0 : 1;
    fields.SharingOptOut = sharing;
  }
  if (shape.targeted) {
    fields.TargetedAdvertisingOptOutNotice = targeted === 0 ? 0 : 1;
    fields.TargetedAdvertisingOptOut = targeted;
  }
  if (shape.gpc && gpc !== null) {
    fields.GpcSegmentIncluded = true;
    fields.Gpc = gpc;
  } else if (shape.gpc) {
    fields.GpcSegmentIncluded = false;
  }
  return [name, fields];
}

const entries = [];
const seen = new Set();
function add(kind, input, note) {
  const key = `${kind}\u0000${input}`;
  if (seen.has(key)) return;
  seen.add(key);
  const verdict = kind === "gpp" ? gppVerdict(input) : uspVerdict(input);
  entries.push({ kind, input, note, ...verdict });
}

const valid = [];
const VALUES = [0, 1, 2];
for (const name of Object.keys(STATES)) {
  const versions = name === "usnat" ? [1, 2] : [undefined];
  for (const version of versions) {
    for (const sale of VALUES) {
      for (const sharing of STATES[name].sharing ? VALUES : [0]) {
        for (const targeted of STATES[name].targeted ? VALUES : [0]) {
          const gpc = STATES[name].gpc ? pick([null, true, false]) : null;
          const s = encode([usSection(name, sale, sharing, targeted, gpc, version)]);
          const v = version ? ` v${version}` : "";
          add("gpp", s, `${name}${v}: sale ${sale}, sharing ${sharing}, targeted ${targeted}, gpc ${gpc}`);
          valid.push(s);
        }
      }
    }
  }
}

const USP = [];
for (const a of "YN-") for (const b of "YN-") for (const c of "YN-") USP.push(`1${a}${b}${c}`);
for (const usp of USP) {
  add("usp", usp, "a US Privacy string");
  const s = encode([["uspv1", { Notice: usp[1], OptOutSale: usp[2], LspaCovered: usp[3] }]]);
  add("gpp", s, `uspv1 ${usp} in GPP`);
  valid.push(s);
}

const mixes = [
  [TCF_EU],
  [TCF_CA],
  [TCF_EU, TCF_CA],
  [TCF_EU, usSection("usnat", 1, 2, 1, true)],
  [TCF_CA, ["uspv1", { Notice: "Y", OptOutSale: "Y", LspaCovered: "N" }]],
  [usSection("usnat", 2, 2, 2, false), usSection("usca", 1, 1, 0, null)],
  [usSection("usva", 2, 0, 1, null), usSection("usco", 1, 0, 2, true), usSection("usut", 2, 0, 2, null)],
  [usSection("usct", 2, 0, 1, false), ["uspv1", { Notice: "Y", OptOutSale: "N", LspaCovered: "-" }]],
  [TCF_EU, usSection("usca", 2, 1, 0, true), usSection("usva", 1, 0, 2, null)],
];
for (const mix of mixes) {
  const s = encode(mix);
  add("gpp", s, `sections ${mix.map(([n]) => n).join(", ")}`);
  valid.push(s);
}

// Strings published with the specification and the reference implementation.
for (const [s, note] of [
  ["DBABM~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA", "TCF EU v2 only (published example)"],
  ["DBACNY~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN", "TCF EU v2 and uspv1 (published example)"],
  ["DBABjw~BPXuQIAPXuQIAAfKABENB-CgAAAAAAAAAAAAAAAA.YAAAAAAAAAA~1YNN", "TCF CA and uspv1 (published example)"],
  ["DBABLA~BVVVVVVVVWA.YA", "usnat v1, all opted out, GPC"],
  ["DBABLA~CAAAAAAAAAWA.Q", "usnat v2, not applicable"],
  ["DBABBg~BVVVVVVY", "usca opted out"],
  ["DBABBg~BVqqqqpY.YA", "usca not opted out, GPC"],
]) {
  add("gpp", s, note);
  valid.push(s);
}

// A section the service cannot read yet (the library can).
add("gpp", encode([["usmd", { SaleOptOutNotice: 1, SaleOptOut: 1 }]]), "usmd (refused: not readable by the service yet)");

// ---------------------------------------------------------------------------------------
// Strings that are wrong, some of which the library still reads.

for (const [kind, s, note] of [
  ["gpp", "DBABLA~CVVVkkkkkpFY+YA", "a usnat section with `+`, outside base64url"],
  ["gpp", "DBABTA~1YNNN", "a uspv1 section of five characters"],
  ["gpp", "DBABTA~1YN", "a uspv1 section of three characters"],
  ["gpp", "DBABTA~2YNN", "a uspv1 section of version 2"],
  ["gpp", "DBABTA~1XYZ", "a uspv1 section with letters other than Y, N and -"],
  ["gpp", "DBABTA~1yn-", "a uspv1 section in lower case"],
  ["gpp", "", "empty"],
  ["gpp", "DBABLA", "a header without its section"],
  ["gpp", "DBABLA~", "a blank section"],
  ["gpp", "DBABLA~ ", "a section of a space"],
  ["gpp", "DBABLA~!!!", "a section of punctuation"],
  ["gpp", "DBAA", "a header with no sections"],
  ["gpp", "DBAA~1YNN", "a header with no sections, and one section"],
  ["gpp", "XYZ~abc", "not a GPP header"],
  ["gpp", "DCABLA~BVVVVVVVVWA", "GPP version 2 in the header"],
  ["gpp", "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA", "a bare TCF EU string, without a GPP header"],
  ["gpp", "DBABLA~DVVVVVVVVWA", "usnat version 3"],
  ["gpp", "DBABBg~CVVVVVVY", "usca version 2"],
  ["gpp", "DBABLA~BVVVVVVVVWA.YA~1YNN", "one section in the header, two in the string"],
  ["gpp", "DBACNY~1YNN", "two sections in the header, one in the string"],
  ["gpp", "DBABLA~BVVVVVVVVWA.Y+", "a GPC sub-section outside base64url"],
  ["gpp", "DBABLA~BVVVVVVVVWA.", "an empty GPC sub-section"],
  ["gpp", "DBABLA~BVVVVVVVVWA.YA.YA", "two GPC sub-sections"],
  ["gpp", "DBABLA~BVVVVVVVVWA==", "base64 padding"],
  ["gpp", " DBABLA~BVVVVVVVVWA", "a leading space"],
  ["gpp", "DBABLA~BVVVVVVVVWA ", "a trailing space"],
  ["gpp", "DBAB~1YNN", "a truncated header"],
  ["gpp", "DBABEA~1YNN", "a header naming section 4 (signal integrity)"],
  ["gpp", "DBABMA~1YNN", "a header naming section 1 (TCF EU v1, withdrawn)"],
  ["usp", "", "empty"],
  ["usp", "1YY", "three characters"],
  ["usp", "1YYNN", "five characters"],
  ["usp", "2YYN", "version 2"],
  ["usp", "1XYN", "a letter other than Y, N and -"],
  ["usp", "abcd", "four letters"],
  ["usp", "1yyn", "lower case"],
  ["usp", " 1YN", "a leading space"],
]) {
  add(kind, s, note);
}

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const OUTSIDE = ["+", "/", "=", "!", " ", "*", "%", "é", "\t"];

/** Mutations of a valid string: characters outside the alphabet, cuts, additions, a
 * changed header, changed characters (which change field values). */
function mutate(s) {
  const parts = s.split("~");
  const at = 1 + Math.floor(rand() * (parts.length - 1));
  const section = parts[at];
  const pos = Math.floor(rand() * section.length);
  const withSection = (t) => parts.map((p, i) => (i === at ? t : p)).join("~");
  return [
    [withSection(section.slice(0, pos) + pick(OUTSIDE) + section.slice(pos + 1)), "a character outside base64url"],
    [withSection(section.slice(0, Math.max(1, Math.floor(section.length / 2)))), "the section cut in half"],
    [withSection(section.slice(0, -1)), "the section's last character cut"],
    [withSection(section + pick(BASE64URL.split(""))), "a character added to the section"],
    [withSection(section.slice(0, pos) + pick(BASE64URL.split("")) + section.slice(pos + 1)), "a character changed"],
    [withSection(section.slice(0, pos) + pick(BASE64URL.split("")) + section.slice(pos + 1)), "a character changed"],
    [`${s}~${pick(["1YNN", "BVVVVVVVVWA", "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"])}`, "one section more than the header says"],
    [parts.length > 2 ? parts.slice(0, -1).join("~") : parts[0], "one section fewer than the header says"],
    [withSection(""), "a blank section"],
    [`${s}~`, "a trailing separator"],
    [withSection(section.includes(".") ? section.split(".")[0] + ".A" : section + ".YA"), "a changed sub-section"],
  ];
}
for (const s of valid) {
  for (const [m, note] of mutate(s)) add("gpp", m, `${note} (from ${s})`);
}
for (const usp of USP) {
  const pos = 1 + Math.floor(rand() * 3);
  add("usp", usp.slice(0, pos) + pick(["A", "y", "n", "0", "_", " "]) + usp.slice(pos + 1), `a changed character (from ${usp})`);
  add("usp", usp + pick(["Y", "N", "-"]), `a character added (from ${usp})`);
}

// ---------------------------------------------------------------------------------------

const corpus = { library: `@iabgpp/cmpapi ${LIBRARY}`, entries };
// One entry a line, so that a change in the library reads as a short diff.
const text = `{"library": ${JSON.stringify(corpus.library)}, "entries": [\n${entries
  .map((e) => JSON.stringify(e))
  .join(",\n")}\n]}\n`;
if (process.argv.includes("--check")) {
  const old = readFileSync(CORPUS, "utf8");
  if (old !== text) {
    const was = JSON.parse(old).entries;
    const byKey = new Map(was.map((e) => [`${e.kind}\u0000${e.input}`, e]));
    let shown = 0;
    for (const e of entries) {
      const o = byKey.get(`${e.kind}\u0000${e.input}`);
      if (JSON.stringify(o) !== JSON.stringify(e) && shown++ < 10) {
        console.error(`differs: ${e.kind} ${JSON.stringify(e.input)}\n  checked in: ${JSON.stringify(o)}\n  library:    ${JSON.stringify(e)}`);
      }
    }
    console.error(`corpus.json does not match what ${corpus.library} says (${entries.length} entries now, ${was.length} checked in); run node tests/gpp/generate.mjs and review the difference`);
    process.exit(1);
  }
  console.log(`corpus.json agrees with ${corpus.library} (${entries.length} entries)`);
} else {
  writeFileSync(CORPUS, text);
  console.log(`wrote corpus.json: ${entries.length} entries from ${corpus.library}`);
}
