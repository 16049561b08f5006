#![no_main]
//! The body is `consentry::fuzzing::policy_files`, which `tests/fuzz_corpus.rs` replays too.

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry::fuzzing::policy_files(data));
