//! Every request the store sends, bounded by the request timeout and retried while etcd is
//! unavailable (a member down, a leader election) until that timeout runs out.
//!
//! Retrying is safe for every request the store makes: reads change nothing; a write is a
//! transaction under the writer's fence that puts the same bytes at the same keys again (or
//! deletes what is already deleted), so applying it twice leaves what applying it once does;
//! a claim recognizes its own owner key; a lease granted twice leaves one unused lease that
//! expires on its own.

use std::future::Future;
use std::time::Duration;

use etcd_client::{
    CompactionResponse, GetOptions, GetResponse, KvClient, LeaseClient, LeaseGrantResponse,
    LeaseRevokeResponse, Txn, TxnResponse,
};
use tokio::time::Instant;

use super::errors::{from_etcd, timed_out};
use crate::error::Result;

/// The pause between attempts while etcd is unavailable.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Runs the request `call` makes until it succeeds, fails with an error other than
/// unavailability, or `timeout` has passed since the first attempt.
pub(crate) async fn request<T, F, Fut>(timeout: Duration, context: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let err = match tokio::time::timeout(remaining, call()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(err)) => from_etcd(context, err),
            Err(_) => return Err(timed_out(context, timeout)),
        };
        if !err.is_unavailable() || Instant::now() + RETRY_PAUSE >= deadline {
            return Err(err);
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

pub(crate) async fn get(
    kv: &KvClient,
    timeout: Duration,
    context: &str,
    key: Vec<u8>,
    options: GetOptions,
) -> Result<GetResponse> {
    request(timeout, context, || {
        let (mut kv, key, options) = (kv.clone(), key.clone(), options.clone());
        async move { kv.get(key, Some(options)).await }
    })
    .await
}

pub(crate) async fn txn(
    kv: &KvClient,
    timeout: Duration,
    context: &str,
    txn: Txn,
) -> Result<TxnResponse> {
    request(timeout, context, || {
        let (mut kv, txn) = (kv.clone(), txn.clone());
        async move { kv.txn(txn).await }
    })
    .await
}

pub(crate) async fn compact(
    kv: &KvClient,
    timeout: Duration,
    revision: i64,
) -> Result<CompactionResponse> {
    request(timeout, "compacting etcd's history", || {
        let mut kv = kv.clone();
        async move { kv.compact(revision, None).await }
    })
    .await
}

pub(crate) async fn grant(
    lease: &LeaseClient,
    timeout: Duration,
    ttl: i64,
) -> Result<LeaseGrantResponse> {
    request(timeout, "granting the writer's lease", || {
        let mut lease = lease.clone();
        async move { lease.grant(ttl, None).await }
    })
    .await
}

pub(crate) async fn revoke(
    lease: &LeaseClient,
    timeout: Duration,
    id: i64,
) -> Result<LeaseRevokeResponse> {
    request(timeout, "revoking the writer's lease", || {
        let mut lease = lease.clone();
        async move { lease.revoke(id).await }
    })
    .await
}
