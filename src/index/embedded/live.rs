//! The live pointer: `LIVE`, a one-line file in the index root (the folder
//! that holds one embedded index folder per model version, `data_dir/index`
//! in the service), naming the folder that serves. `vitrine reindex` builds
//! a new version's folder beside the live one and then moves the pointer.
//!
//! Both functions take the **index root**, not the data directory.

use std::{fs::File, io, path::Path};

/// The name of the live index folder under `root`, if one was set.
pub fn read_live(root: &Path) -> Option<String> {
    std::fs::read_to_string(root.join("LIVE"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Atomically points `root/LIVE` at `dir_name` (a folder under `root`): the
/// new name is written and synced beside it, then renamed over it, and the
/// rename made durable by syncing `root`.
pub fn set_live(root: &Path, dir_name: &str) -> io::Result<()> {
    std::fs::create_dir_all(root)?;
    let tmp = root.join("LIVE.tmp");
    std::fs::write(&tmp, format!("{dir_name}\n"))?;
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, root.join("LIVE"))?;
    File::open(root)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_pointer_round_trips_and_is_replaced() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().join("index");
        assert_eq!(read_live(&root), None);
        set_live(&root, "effnet-aaaa").unwrap();
        assert_eq!(read_live(&root).as_deref(), Some("effnet-aaaa"));
        set_live(&root, "effnet-bbbb").unwrap();
        assert_eq!(read_live(&root).as_deref(), Some("effnet-bbbb"));
        assert!(!root.join("LIVE.tmp").exists());
    }
}
