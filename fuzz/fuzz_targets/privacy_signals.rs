#![no_main]
//! The body is `consentry::fuzzing::privacy_signals`, which `tests/fuzz_corpus.rs` replays too.

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry::fuzzing::privacy_signals(data));
