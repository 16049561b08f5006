#![no_main]
//! The body is `consentry::fuzzing::survey_definition_body`, which `tests/fuzz_corpus.rs` replays too.

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry::fuzzing::survey_definition_body(data));
