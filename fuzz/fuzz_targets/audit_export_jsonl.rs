#![no_main]
//! The body is `consentry::fuzzing::audit_export_jsonl`, which `tests/fuzz_corpus.rs` replays too.

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry::fuzzing::audit_export_jsonl(data));
