//! Replays every fuzz target's corpus (`fuzz/corpus/<target>/`) and its crash
//! reproducers (`fuzz/regressions/<target>/`) through the same function the fuzzer
//! runs, so an input that once panicked, or any seed, is checked by every `cargo test`
//! without libFuzzer.

use std::path::{Path, PathBuf};

use consentry::fuzzing::TARGETS;

fn inputs(folder: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(folder)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs one target on every input; a panic fails the test naming the file.
fn replay(target: &str, run: fn(&[u8]), files: &[PathBuf]) {
    for file in files {
        let data = std::fs::read(file).expect("a corpus file");
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("{target} panicked on {}", file.display());
        }
    }
}

#[test]
fn every_target_has_a_corpus() {
    for (target, _) in TARGETS {
        assert!(
            !inputs("corpus", target).is_empty(),
            "fuzz/corpus/{target}/ is empty: the replay would pass without checking anything"
        );
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/fuzz_targets")
                .join(format!("{target}.rs"))
                .is_file(),
            "no fuzz target for {target}"
        );
    }
}

#[test]
fn corpora_replay_without_panics() {
    for (target, run) in TARGETS {
        replay(target, run, &inputs("corpus", target));
    }
    consentry::fuzzing::remove_policy_copy();
}

#[test]
fn crash_reproducers_replay_without_panics() {
    for (target, run) in TARGETS {
        replay(target, run, &inputs("regressions", target));
    }
}
