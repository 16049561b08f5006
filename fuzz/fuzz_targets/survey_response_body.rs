#![no_main]
//! The body is `consentry::fuzzing::survey_response_body`, which `tests/fuzz_corpus.rs` replays too.

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry::fuzzing::survey_response_body(data));
