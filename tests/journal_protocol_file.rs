//! The journal's checkpoint protocol and the store contract on the file store (the same
//! scenarios run on any store: see `tests/support/journal_protocol.rs`).

#[path = "support/journal_protocol.rs"]
mod journal_protocol;

use raftwal::store::{FileStore, Store};
use raftwal::WalOptions;
use tempfile::TempDir;

/// A new file store in a temp dir, with small segments so purges delete whole files.
fn fresh() -> (TempDir, impl FnMut() -> raftwal::Result<Box<dyn Store>>) {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("journal");
    let options = WalOptions::new().segment_size(4096);
    let open = move || -> raftwal::Result<Box<dyn Store>> {
        Ok(Box::new(FileStore::open_or_create(&dir, options.clone())?))
    };
    (parent, open)
}

journal_protocol_tests!(fresh);
