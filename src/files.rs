//! Files only the service's own user may read: the data folder, keys, secrets and the
//! SQLite database. Rights are set explicitly, whatever the process umask is.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

const PRIVATE_DIR: u32 = 0o700;
const PRIVATE_FILE: u32 = 0o600;

/// Creates `dir` and any missing parents; every folder created here is owner-only, as is
/// `dir` itself. Existing parents are left as they are.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .collect();
    fs::create_dir_all(dir)?;
    for created in missing {
        set_mode(created, PRIVATE_DIR)?;
    }
    set_mode(dir, PRIVATE_DIR)
}

/// Writes a new file readable by its owner only, never replacing one.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(PRIVATE_FILE);
    }
    let mut file = options.open(path)?;
    // The umask may have narrowed the mode further, never widened it; set it exactly.
    set_mode(path, PRIVATE_FILE)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes an existing file owner-only, or creates it empty and owner-only. SQLite then
/// gives its `-wal` and `-shm` files the database file's rights.
pub fn ensure_private_file(path: &Path) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(PRIVATE_FILE);
    }
    options.open(path)?;
    set_mode(path, PRIVATE_FILE)
}

/// Tightens a file that may exist (a `-wal` left by an older version) to owner-only.
pub fn restrict_if_present(path: &Path) -> io::Result<()> {
    match set_mode(path, PRIVATE_FILE) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn folders_and_files_are_owner_only_and_parents_created_too() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("data/keys");
        create_private_dir(&deep).unwrap();
        assert_eq!(mode(&root.path().join("data")), 0o700);
        assert_eq!(mode(&deep), 0o700);
        let secret = deep.join("secret");
        write_private_file(&secret, b"x").unwrap();
        assert_eq!(mode(&secret), 0o600);
        assert!(write_private_file(&secret, b"y").is_err(), "never replaced");

        let db = root.path().join("data/consentry.db");
        fs::write(&db, b"").unwrap();
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
        ensure_private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        restrict_if_present(&root.path().join("data/absent-wal")).unwrap();
    }
}
