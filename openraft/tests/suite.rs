//! openraft's own conformance suite, `Suite::test_all`, against the raftwal log store, with the
//! example's key-value state machine.

#[path = "../examples/kv_cluster.rs"]
#[allow(unused)]
mod kv_cluster;

use kv_cluster::{KvStateMachine, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use raftwal::WalOptions;
use raftwal_openraft::LogStore;

/// Builds each test's store in a fresh directory (kept alive by the returned guard), with small
/// segments so that purges delete segment files.
struct Builder;

impl StoreBuilder<TypeConfig, LogStore<TypeConfig>, KvStateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore<TypeConfig>, KvStateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let options = WalOptions::new().segment_size(4096);
        let store = LogStore::open(dir.path().join("wal"), options).expect("a new log store opens");
        Ok((dir, store, KvStateMachine::in_memory()))
    }
}

#[test]
fn openraft_suite_test_all_passes_on_the_raftwal_log_store() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("openraft's suite failed on the raftwal store: {e}");
    }
}
