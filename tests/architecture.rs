//! The direction of dependencies between rooms, checked on every test run (ARCHITECTURE.md
//! explains it). Each room under `src/` has two floors: its domain code, and its endpoints
//! in `api/` (or `api.rs`). A `crate::room` path in a file is an edge from the file's floor
//! to that room; an edge may only point to a lower layer of the table below. Endpoint
//! floors stand above every domain floor and never reach into one another.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Layers from the bottom up; rooms on one line are peers that may not use each other.
const LAYERS: &[&[&str]] = &[
    &["clock", "csv_cell", "files", "identifier", "validation"],
    &["crypto"],
    &["storage"],
    &["policy"],
    &["auth"],
    &["outbox"],
    &["audit"],
    &["consent"],
    &["profiles"],
    &["gate"],
    &["surveys"],
    &["journeys"],
    &["dsar"],
    &["delivery"],
    &["portal"],
    &["http"],
    &[
        "policy/api",
        "auth/api",
        "audit/api",
        "consent/api",
        "profiles/api",
        "gate/api",
        "surveys/api",
        "journeys/api",
        "dsar/api",
        "delivery/api",
        "portal/api",
        "http/api",
    ],
    &["config"],
    &["telemetry"],
    &["server"],
    &["demo"],
    &["cli"],
    // The fuzz targets' bodies drive endpoint floors' checks; nothing depends on them.
    &["fuzzing"],
];

fn layer_of(floor: &str) -> Option<usize> {
    LAYERS.iter().position(|rooms| rooms.contains(&floor))
}

/// The floor a source file stands on: `consent/api` for `src/consent/api/*.rs` and
/// `src/consent/api.rs`, `consent` for the rest of `src/consent/`, `clock` for
/// `src/clock.rs`.
fn floor_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let room = parts.first()?.trim_end_matches(".rs").to_owned();
    if matches!(room.as_str(), "lib" | "main") {
        return None;
    }
    let in_api = parts.get(1).is_some_and(|p| p == "api" || p == "api.rs");
    Some(if in_api { format!("{room}/api") } else { room })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The rooms a file names as `crate::room` (in `use` lines or inline paths).
fn rooms_named(text: &str) -> BTreeSet<String> {
    let mut rooms = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `crate::consent::api::...` names the endpoint floor.
        let floor = if rest[name.len()..].starts_with("::api") {
            format!("{name}/api")
        } else {
            name
        };
        rooms.insert(floor);
    }
    rooms
}

#[test]
fn dependencies_point_down_the_layers() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let Some(from) = floor_of(&src, file) else {
            continue;
        };
        let Some(from_layer) = layer_of(&from) else {
            wrong.push(format!(
                "{}: room `{from}` is not in the layer table",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for to in rooms_named(&text) {
            // A room's own floors: endpoints use their domain, never the other way.
            let own_room = from.split('/').next() == to.split('/').next();
            if to == from || (own_room && to.split('/').next() == Some(&*to)) {
                continue;
            }
            match layer_of(&to) {
                Some(to_layer) if to_layer < from_layer => {}
                Some(_) => wrong.push(format!(
                    "{}: `{from}` uses `{to}`, which is not below it",
                    file.strip_prefix(&src).unwrap().display()
                )),
                None => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies that point the wrong way (see ARCHITECTURE.md):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_floors_and_edges() {
    let src = Path::new("/x/src");
    assert_eq!(
        floor_of(src, Path::new("/x/src/consent/api/consents.rs")).as_deref(),
        Some("consent/api")
    );
    assert_eq!(
        floor_of(src, Path::new("/x/src/audit/api.rs")).as_deref(),
        Some("audit/api")
    );
    assert_eq!(
        floor_of(src, Path::new("/x/src/consent/ledger.rs")).as_deref(),
        Some("consent")
    );
    assert_eq!(
        floor_of(src, Path::new("/x/src/clock.rs")).as_deref(),
        Some("clock")
    );
    let named = rooms_named("use crate::consent::api::x;\nlet a = crate::gate::rules::decide;");
    assert_eq!(
        named.into_iter().collect::<Vec<_>>(),
        ["consent/api", "gate"]
    );
    assert!(layer_of("gate") < layer_of("surveys"));
    assert!(layer_of("http") < layer_of("gate/api"));
}
