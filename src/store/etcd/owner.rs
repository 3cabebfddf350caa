//! Ownership of the log: one writer at a time, fenced by a lease and a revision.
//!
//! A writer grants itself a lease, then claims the owner key with a transaction that succeeds
//! only if the key does not exist, putting its name there with the lease attached. The claim's
//! revision is the fence: every later write of this writer is a transaction comparing the owner
//! key's `mod_revision` with it. When the lease expires etcd deletes the key, and when another
//! writer claims it the key gets a newer revision; either way the comparison fails inside etcd,
//! at the point where the write would be applied, so no write of a writer that lost the log is
//! ever visible, however late it arrives.
//!
//! A background task keeps the lease alive while the store is open, reconnecting its stream
//! when a member goes away; it only reports a lease it saw expire (a quicker `Fenced`), the
//! comparison in etcd being what guarantees the fence.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, KeyValue, LeaseClient, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use tokio::task::JoinHandle;

use super::layout::{show_key, Keys};
use super::rpc;
use crate::error::{Error, Result};

/// This writer's hold on the log.
pub(crate) struct Ownership {
    /// The lease the owner key is attached to.
    pub(crate) lease: i64,
    /// The owner key's `mod_revision` after this writer's claim: the fence.
    pub(crate) revision: i64,
    /// Set by the keep-alive task when etcd says the lease is gone.
    lost: Arc<AtomicBool>,
    keeper: JoinHandle<()>,
}

impl Ownership {
    /// Whether the keep-alive task saw the lease expire.
    pub(crate) fn lease_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// The compare every write of this writer carries.
    pub(crate) fn fence(&self, keys: &Keys) -> Compare {
        Compare::mod_revision(keys.owner(), CompareOp::Equal, self.revision)
    }

    /// Stops keeping the lease alive (it then expires after its TTL unless revoked).
    pub(crate) fn stop(&self) {
        self.keeper.abort();
    }
}

impl Drop for Ownership {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// Who this writer is, as the owner key shows it to the others (and to operators).
fn writer_name(lease: i64) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".to_string());
    format!("{host} pid {} lease {lease:x}", std::process::id())
}

/// The owner named in a failed claim's or write's `or_else` get, for the error message.
pub(crate) fn current_owner(responses: &[TxnOpResponse]) -> String {
    match owner_key(responses) {
        Some(kv) => format!("owned by {}", String::from_utf8_lossy(kv.value())),
        None => "no owner: the lease expired or was revoked".to_string(),
    }
}

/// The owner key as a failed transaction's `or_else` get returned it.
fn owner_key(responses: &[TxnOpResponse]) -> Option<&KeyValue> {
    responses.iter().find_map(|response| match response {
        TxnOpResponse::Get(get) => get.kvs().first(),
        _ => None,
    })
}

/// Grants a lease, keeps it alive and claims the owner key, waiting up to `wait` for another
/// owner to go.
pub(crate) async fn claim(
    client: &Client,
    keys: &Keys,
    ttl: Duration,
    wait: Duration,
    timeout: Duration,
) -> Result<Ownership> {
    let lease_client = client.lease_client();
    let ttl_secs = i64::try_from(ttl.as_secs_f64().ceil() as u64)
        .unwrap_or(i64::MAX)
        .max(1);
    let grant = rpc::grant(&lease_client, timeout, ttl_secs).await?;
    let lease = grant.id();
    let granted = Duration::from_secs(u64::try_from(grant.ttl()).unwrap_or(1).max(1));
    let lost = Arc::new(AtomicBool::new(false));
    let keeper = tokio::spawn(keep_alive(
        client.lease_client(),
        lease,
        granted,
        lost.clone(),
    ));
    let mut ownership = Ownership {
        lease,
        revision: 0,
        lost,
        keeper,
    };
    let name = writer_name(lease);
    let deadline = Instant::now() + wait;
    let kv = client.kv_client();
    loop {
        let txn = Txn::new()
            .when([Compare::create_revision(keys.owner(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                keys.owner(),
                name.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(keys.owner(), None)]);
        let result = rpc::txn(&kv, timeout, "claiming the log", txn).await;
        let response = match result {
            Ok(response) => response,
            Err(err) => {
                ownership.stop();
                revoke(client, lease, timeout).await.ok();
                return Err(err);
            }
        };
        let responses = response.op_responses();
        if response.succeeded() {
            ownership.revision = response.header().map_or(0, |header| header.revision());
            return Ok(ownership);
        }
        // A retried claim whose first attempt was applied finds its own owner key.
        if let Some(own) = owner_key(&responses).filter(|kv| kv.lease() == lease) {
            ownership.revision = own.mod_revision();
            return Ok(ownership);
        }
        let now = Instant::now();
        if now >= deadline {
            ownership.stop();
            revoke(client, lease, timeout).await.ok();
            return Err(Error::Fenced {
                prefix: keys.prefix().to_string(),
                reason: format!(
                    "{} (key {})",
                    current_owner(&responses),
                    show_key(&keys.owner())
                ),
            });
        }
        tokio::time::sleep((deadline - now).min(Duration::from_millis(200))).await;
    }
}

/// Revokes the lease, which deletes the owner key if it is still this writer's.
pub(crate) async fn revoke(client: &Client, lease: i64, timeout: Duration) -> Result<()> {
    match rpc::revoke(&client.lease_client(), timeout, lease).await {
        Ok(_) => Ok(()),
        // Already expired: nothing is held.
        Err(Error::Store { reason, .. }) if reason.contains("lease not found") => Ok(()),
        Err(err) => Err(err),
    }
}

/// Keeps the lease alive every third of its TTL until aborted; a broken stream (a member
/// restarting, a leader change) is reopened, and a lease etcd no longer knows is reported.
async fn keep_alive(mut client: LeaseClient, lease: i64, ttl: Duration, lost: Arc<AtomicBool>) {
    let period = (ttl / 3).max(Duration::from_millis(100));
    loop {
        match client.keep_alive(lease).await {
            Ok((mut keeper, mut stream)) => loop {
                tokio::time::sleep(period).await;
                if keeper.keep_alive().await.is_err() {
                    break;
                }
                match tokio::time::timeout(period, stream.message()).await {
                    Ok(Ok(Some(response))) if response.ttl() > 0 => {}
                    Ok(Ok(Some(_))) => {
                        lost.store(true, Ordering::Relaxed);
                        return;
                    }
                    _ => break,
                }
            },
            Err(etcd_client::Error::LeaseKeepAliveError(_)) => {
                lost.store(true, Ordering::Relaxed);
                return;
            }
            Err(_) => {}
        }
        tokio::time::sleep(period.min(Duration::from_millis(500))).await;
    }
}
