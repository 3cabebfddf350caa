//! The journal's checkpoint protocol and the store contract on the etcd store: the same
//! scenarios as on the file store (`tests/support/journal_protocol.rs`), each against its own
//! single-member etcd on loopback. Without the etcd binary each test prints `SKIPPED`.

#[path = "support/etcd_server.rs"]
mod etcd_server;
#[path = "support/journal_protocol.rs"]
mod journal_protocol;
#[path = "support/skip.rs"]
mod skip;

use std::time::Duration;

use etcd_server::Etcd;
use raftwal::store::etcd::EtcdOptions;
use raftwal::store::Store;

/// A fresh etcd and an opener of the store under one prefix. A scenario that drops a journal
/// without closing it leaves the old lease behind, so the opener waits for it to expire.
fn fresh() -> (Etcd, impl FnMut() -> raftwal::Result<Box<dyn Store>>) {
    let etcd = Etcd::single();
    let options = EtcdOptions::new(etcd.endpoints(), "journal/")
        .lease_ttl(Duration::from_secs(2))
        .wait_for_owner(Duration::from_secs(10))
        .request_timeout(Duration::from_secs(5));
    let open = move || -> raftwal::Result<Box<dyn Store>> { Ok(Box::new(options.open()?)) };
    (etcd, open)
}

journal_protocol_tests!(fresh, if etcd_server::available);
