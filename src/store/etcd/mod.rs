//! The etcd store (feature `etcd`): a journal's records as keys under a prefix in an etcd
//! cluster, so the journal survives the loss of the machine, with one fenced writer at a time.
//!
//! - **Records** are keys `P r/%016x` (`layout.rs` describes every key). Each append is as
//!   few transactions as etcd's limits allow (`--max-txn-ops`, `--max-request-bytes`, set with
//!   [`EtcdOptions::max_txn_ops`] and [`EtcdOptions::max_request_bytes`]); a record larger than
//!   a chunk is split into chunk keys written before its head, so a record is visible only
//!   whole and a crash keeps a prefix of a batch.
//! - **One writer**: [`EtcdOptions::open`] claims the owner key with a lease, and every write
//!   compares the owner key's revision, so a writer that lost ownership gets [`Error::Fenced`]
//!   and nothing it writes afterwards is visible. A new writer takes over once the old lease
//!   expires (or the old writer closed the store).
//! - **Errors** are typed: an unreachable cluster is [`Error::StoreUnavailable`], a wrong
//!   password, certificate or missing permission [`Error::AccessDenied`], etcd's space quota
//!   [`Error::StoreFull`], keys under the prefix that are not the store's or a damaged record
//!   [`Error::StoreCorrupt`].
//!
//! The store's methods block (it runs its own small tokio runtime): call them from a thread,
//! not from async code (there, use `spawn_blocking`).

mod errors;
mod layout;
mod options;
mod owner;
mod rpc;

use std::time::Duration;

use etcd_client::{
    Client, DeleteOptions, GetOptions, KvClient, PutOptions, Txn, TxnOp, TxnResponse,
};
use tokio::runtime::Runtime;

use self::layout::{KeyKind, Keys, Limits};
pub use self::options::{
    EtcdOptions, EtcdTls, DEFAULT_CHUNK_SIZE, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_TXN_OPS,
};
use self::owner::{current_owner, Ownership};
use super::Store;
use crate::error::{Error, IoContext as _, Result};

/// Keys (heads or chunks) fetched per read request.
const READ_PAGE: usize = 128;
/// Keys listed per request when the layout is checked at open.
const SCAN_PAGE: i64 = 1000;

/// A journal's store in etcd. Open it with [`EtcdOptions::open`] (the writer) or
/// [`EtcdOptions::open_read_only`].
pub struct EtcdStore {
    runtime: Runtime,
    client: Client,
    kv: KvClient,
    options: EtcdOptions,
    keys: Keys,
    limits: Limits,
    first: u64,
    last: u64,
    ownership: Option<Ownership>,
    /// Why writes are refused after a failed write: the error, kept to answer again.
    failed: Option<Failure>,
}

/// What a failed write leaves behind.
enum Failure {
    Fenced(String),
    Other(String),
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.options.endpoints)
            .field("prefix", &self.options.prefix)
            .field("first", &self.first)
            .field("last", &self.last)
            .field("lease", &self.lease())
            .finish()
    }
}

impl EtcdStore {
    pub(crate) fn open(options: EtcdOptions, write: bool) -> Result<EtcdStore> {
        options.check()?;
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::InvalidState {
                reason:
                    "the etcd store blocks: open and call it outside async code (spawn_blocking)",
            });
        }
        let keys = Keys::new(&options.prefix);
        let max_bytes = options.max_request_bytes - layout::TXN_OVERHEAD;
        // The longest key is a chunk's: the prefix, `c/`, 16 + 1 + 8 digits.
        let largest_put_overhead = options.prefix.len() + 27 + 6 + layout::PUT_OVERHEAD;
        let chunk_size = options
            .chunk_size
            .min(max_bytes.saturating_sub(largest_put_overhead))
            .max(1);
        let limits = Limits {
            max_ops: options.max_txn_ops,
            max_bytes,
            chunk_size,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("raftwal-etcd")
            .enable_all()
            .build()
            .ctx(|| "starting the etcd store's runtime")?;
        let client = runtime.block_on(options.connect())?;
        // A read page holds up to READ_PAGE values of at most a chunk each.
        let kv = client
            .kv_client()
            .max_decoding_message_size(READ_PAGE * (chunk_size + 1024) + (1 << 20));
        let mut store = EtcdStore {
            runtime,
            client,
            kv,
            options,
            keys,
            limits,
            first: 1,
            last: 0,
            ownership: None,
            failed: None,
        };
        // Check the layout before claiming, so a prefix holding someone else's keys is refused
        // without writing an owner key into it.
        let orphans = store.scan()?;
        if write {
            let ownership = store.runtime.block_on(owner::claim(
                &store.client,
                &store.keys,
                store.options.lease_ttl,
                store.options.wait_for_owner,
                store.options.request_timeout,
            ))?;
            store.ownership = Some(ownership);
            // The previous owner may have written until our claim: read the state again.
            let prepared = match store.scan() {
                Ok(more_orphans) => store.prepare(orphans || more_orphans),
                Err(err) => Err(err),
            };
            if let Err(err) = prepared {
                // Release the claim at once rather than making the next writer wait a TTL.
                store.release().ok();
                return Err(err);
            }
        }
        Ok(store)
    }

    /// Stops keeping the lease alive and revokes it, which deletes the owner key if it is
    /// still this writer's.
    fn release(&mut self) -> Result<()> {
        let Some(ownership) = self.ownership.take() else {
            return Ok(());
        };
        ownership.stop();
        self.runtime.block_on(owner::revoke(
            &self.client,
            ownership.lease,
            self.options.request_timeout,
        ))
    }

    /// The lease this writer's ownership rides on (`None` for a read-only store).
    pub fn lease(&self) -> Option<i64> {
        self.ownership.as_ref().map(|ownership| ownership.lease)
    }

    /// The key prefix the store lives under.
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    fn timeout(&self) -> Duration {
        self.options.request_timeout
    }

    /// Lists every key under the prefix at one revision, checks that they are the store's
    /// layout and consistent (meta, heads without gaps from the first index, no chunk below
    /// it), and sets the first and last index. Returns whether chunks above the last head are
    /// left over (from a crash between a large record's chunks and its head).
    fn scan(&mut self) -> Result<bool> {
        let keys = self.keys.clone();
        let timeout = self.timeout();
        let kv = self.kv.clone();
        let (listed, meta) = self.runtime.block_on(async move {
            let context = "listing the store's keys";
            let mut listed = Vec::new();
            let mut start = keys.prefix().as_bytes().to_vec();
            let mut revision = 0;
            loop {
                let mut get = GetOptions::new()
                    .with_range(keys.prefix_end())
                    .with_keys_only()
                    .with_limit(SCAN_PAGE);
                if revision > 0 {
                    get = get.with_revision(revision);
                }
                let mut page = rpc::get(&kv, timeout, context, start.clone(), get).await?;
                if revision == 0 {
                    revision = page.header().map_or(0, |header| header.revision());
                }
                let more = page.more();
                let kvs = page.take_kvs();
                let Some(last) = kvs.last() else { break };
                start = last.key().to_vec();
                start.push(0);
                listed.extend(kvs.into_iter().map(|kv| kv.into_key_value().0));
                if !more {
                    break;
                }
            }
            let get = GetOptions::new().with_revision(revision.max(0));
            let meta = rpc::get(
                &kv,
                timeout,
                "reading the store's meta key",
                keys.meta(),
                get,
            )
            .await?
            .take_kvs()
            .into_iter()
            .next()
            .map(|kv| kv.into_key_value().1);
            Ok::<_, Error>((listed, meta))
        })?;

        let corrupt = |key: &[u8], reason: String| Error::StoreCorrupt {
            key: layout::show_key(key),
            reason,
        };
        let first = match &meta {
            Some(value) => layout::decode_meta(&self.keys.meta(), value)?,
            None => 1,
        };
        let mut lowest_chunk: Option<(u64, &[u8])> = None;
        let mut highest_chunk = 0;
        let mut heads: Option<(u64, u64)> = None;
        for key in &listed {
            match self.keys.parse(key) {
                None => {
                    return Err(corrupt(
                        key,
                        format!(
                            "a key under the prefix that is not the etcd store's (is {:?} the right prefix?)",
                            self.keys.prefix()
                        ),
                    ))
                }
                Some(KeyKind::Owner | KeyKind::Meta) => {}
                Some(KeyKind::Chunk(index, _)) => {
                    if lowest_chunk.is_none() {
                        lowest_chunk = Some((index, key));
                    }
                    highest_chunk = highest_chunk.max(index);
                }
                Some(KeyKind::Head(index)) => {
                    heads = match heads {
                        None if index != first => {
                            let reason = if index < first {
                                format!("a record below the first index {first}")
                            } else {
                                format!("records {first}..{index} are missing")
                            };
                            return Err(corrupt(key, reason));
                        }
                        None => Some((index, index)),
                        Some((low, high)) if index == high + 1 => Some((low, index)),
                        Some((_, high)) => {
                            return Err(corrupt(
                                key,
                                format!("records {}..{index} are missing", high + 1),
                            ))
                        }
                    };
                }
            }
        }
        if meta.is_none() && (heads.is_some() || lowest_chunk.is_some()) {
            return Err(corrupt(
                &self.keys.meta(),
                "records without the store's meta key".to_string(),
            ));
        }
        if let Some((index, key)) = lowest_chunk {
            if index < first {
                return Err(corrupt(
                    key,
                    format!("a chunk below the first index {first}"),
                ));
            }
        }
        self.first = first;
        self.last = heads.map_or(first - 1, |(_, high)| high);
        Ok(lowest_chunk.is_some() && highest_chunk > self.last)
    }

    /// After the claim: writes the meta key of a new store and deletes chunks a crashed append
    /// left above the last record, so that the next record's chunks start clean.
    fn prepare(&mut self, orphans: bool) -> Result<()> {
        let mut ops = Vec::new();
        if self.first == 1 && self.last == 0 {
            ops.push(TxnOp::put(self.keys.meta(), layout::encode_meta(1), None));
        }
        if orphans {
            ops.push(TxnOp::delete(
                self.keys.chunks_from(self.last + 1),
                Some(DeleteOptions::new().with_range(self.keys.chunks_end())),
            ));
        }
        if ops.is_empty() {
            return Ok(());
        }
        self.fenced_txn("preparing the store after the claim", ops)
            .map(drop)
    }

    /// Runs `ops` in one transaction guarded by this writer's fence. A failed comparison is
    /// [`Error::Fenced`]; any error refuses later writes.
    fn fenced_txn(&mut self, context: &str, ops: Vec<TxnOp>) -> Result<TxnResponse> {
        let result = self.try_fenced_txn(context, ops);
        if let Err(err) = &result {
            self.failed = Some(match err {
                Error::Fenced { reason, .. } => Failure::Fenced(reason.clone()),
                other => Failure::Other(other.to_string()),
            });
        }
        result
    }

    fn try_fenced_txn(&mut self, context: &str, ops: Vec<TxnOp>) -> Result<TxnResponse> {
        let ownership = self.ownership.as_ref().ok_or(Error::InvalidState {
            reason: "the etcd store was opened read-only",
        })?;
        let fenced = |reason: String| Error::Fenced {
            prefix: self.keys.prefix().to_string(),
            reason,
        };
        if ownership.lease_lost() {
            return Err(fenced("this writer's lease expired".to_string()));
        }
        let txn = Txn::new()
            .when([ownership.fence(&self.keys)])
            .and_then(ops)
            .or_else([TxnOp::get(self.keys.owner(), None)]);
        let response = self
            .runtime
            .block_on(rpc::txn(&self.kv, self.timeout(), context, txn))?;
        if !response.succeeded() {
            return Err(fenced(format!(
                "the log changed owner: {}",
                current_owner(&response.op_responses())
            )));
        }
        Ok(response)
    }

    fn check_writable(&self) -> Result<()> {
        match &self.failed {
            None => Ok(()),
            Some(Failure::Fenced(reason)) => Err(Error::Fenced {
                prefix: self.keys.prefix().to_string(),
                reason: reason.clone(),
            }),
            Some(Failure::Other(reason)) => Err(Error::Poisoned {
                reason: reason.clone(),
            }),
        }
    }

    /// Fetches and checks the chunks of record `index` at `revision`.
    async fn read_chunks(
        kv: KvClient,
        keys: &Keys,
        index: u64,
        chunks: u32,
        revision: i64,
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        let mut record = Vec::new();
        let mut next = 0u32;
        let mut start = keys.chunks_from(index);
        loop {
            let get = GetOptions::new()
                .with_range(keys.chunks_of_end(index))
                .with_limit(READ_PAGE as i64)
                .with_revision(revision);
            let mut page = rpc::get(
                &kv,
                timeout,
                "reading a record's chunks",
                start.clone(),
                get,
            )
            .await?;
            let more = page.more();
            for kv in page.take_kvs() {
                let (key, value) = kv.into_key_value();
                if keys.parse(&key) != Some(KeyKind::Chunk(index, next)) || next >= chunks {
                    return Err(Error::StoreCorrupt {
                        key: layout::show_key(&key),
                        reason: format!("expected chunk {next} of {chunks} of record {index}"),
                    });
                }
                record.extend_from_slice(&value);
                next += 1;
                start = key;
                start.push(0);
            }
            if !more {
                break;
            }
        }
        if next != chunks {
            return Err(Error::StoreCorrupt {
                key: layout::show_key(&keys.chunk(index, next)),
                reason: format!("record {index} has {next} of its {chunks} chunks"),
            });
        }
        Ok(record)
    }
}

impl Store for EtcdStore {
    fn first_index(&self) -> u64 {
        self.first
    }

    fn last_index(&self) -> u64 {
        self.last
    }

    fn append(&mut self, records: &[&[u8]]) -> Result<()> {
        self.check_writable()?;
        if records.is_empty() {
            return Ok(());
        }
        for txn in layout::plan(&self.keys, self.last + 1, records, self.limits) {
            let heads = txn
                .iter()
                .filter(|put| matches!(self.keys.parse(&put.key), Some(KeyKind::Head(_))))
                .count() as u64;
            let ops: Vec<TxnOp> = txn
                .into_iter()
                .map(|put| TxnOp::put(put.key, put.value, None::<PutOptions>))
                .collect();
            self.fenced_txn("appending records", ops)?;
            self.last += heads;
        }
        Ok(())
    }

    fn read_from(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut expected = from.max(self.first);
        let mut start = self.keys.head(expected);
        let mut revision = 0;
        let timeout = self.timeout();
        loop {
            let mut get = GetOptions::new()
                .with_range(self.keys.heads_end())
                .with_limit(READ_PAGE as i64);
            if revision > 0 {
                get = get.with_revision(revision);
            }
            let mut page = self.runtime.block_on(rpc::get(
                &self.kv,
                timeout,
                "reading records",
                start.clone(),
                get,
            ))?;
            if revision == 0 {
                revision = page.header().map_or(0, |header| header.revision());
            }
            let more = page.more();
            for kv in page.take_kvs() {
                let (key, value) = kv.into_key_value();
                if self.keys.parse(&key) != Some(KeyKind::Head(expected)) {
                    return Err(Error::StoreCorrupt {
                        key: layout::show_key(&key),
                        reason: format!("expected the head of record {expected}"),
                    });
                }
                match layout::decode_head(&key, &value)? {
                    layout::Head::Inline(record) => visit(expected, record)?,
                    layout::Head::Chunked { len, chunks, crc } => {
                        let record = self.runtime.block_on(Self::read_chunks(
                            self.kv.clone(),
                            &self.keys,
                            expected,
                            chunks,
                            revision,
                            timeout,
                        ))?;
                        layout::check_chunked(&key, &record, len, crc)?;
                        visit(expected, &record)?;
                    }
                }
                expected += 1;
                start = key;
                start.push(0);
            }
            if !more {
                break;
            }
        }
        // The writer knows how far the log reaches: fewer records is a loss, never an end.
        if self.ownership.is_some() && expected <= self.last {
            return Err(Error::StoreCorrupt {
                key: layout::show_key(&self.keys.head(expected)),
                reason: format!("record {expected} is missing (the last is {})", self.last),
            });
        }
        if self.ownership.is_none() {
            self.last = self.last.max(expected - 1);
        }
        Ok(())
    }

    fn delete_before(&mut self, index: u64) -> Result<()> {
        self.check_writable()?;
        if index > self.last + 1 {
            return Err(Error::InvalidState {
                reason: "cannot delete records that were never appended",
            });
        }
        if index <= self.first {
            return Ok(());
        }
        let ops = vec![
            TxnOp::put(self.keys.meta(), layout::encode_meta(index), None),
            TxnOp::delete(
                self.keys.head(0),
                Some(DeleteOptions::new().with_range(self.keys.head(index))),
            ),
            TxnOp::delete(
                self.keys.chunks_from(0),
                Some(DeleteOptions::new().with_range(self.keys.chunks_from(index))),
            ),
        ];
        let response = self.fenced_txn("deleting records", ops)?;
        self.first = index;
        if self.options.compact {
            let revision = response.header().map_or(0, |header| header.revision());
            let compaction =
                self.runtime
                    .block_on(rpc::compact(&self.kv, self.timeout(), revision));
            // The deletion is done and durable; a compaction that fails (another client
            // compacted further, a user not allowed to compact) only leaves history for etcd's
            // own auto-compaction.
            if let Err(err) = compaction {
                tracing::warn!(prefix = %self.keys.prefix(), %err, "etcd compaction failed");
            }
        }
        Ok(())
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        // Appends were durable when they returned; closing only hands the log on.
        self.release()
    }
}
