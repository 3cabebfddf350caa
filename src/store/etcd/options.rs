//! How to reach the etcd cluster and how the store uses it: endpoints, prefix, TLS, auth,
//! timeouts, lease and the server's size limits.

use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use super::errors::{from_etcd, timed_out};
use super::EtcdStore;
use crate::error::{Error, Result};

/// etcd's default `--max-txn-ops`.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;
/// etcd's default `--max-request-bytes` (1.5 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;
/// The default largest chunk of a record (and largest record stored inline in its head).
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;

/// TLS settings: the CA that signed the servers' certificates and, when the cluster asks for
/// client certificates (`--client-cert-auth`), this client's certificate and key.
#[derive(Clone, Debug, Default)]
pub struct EtcdTls {
    ca_pem: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    domain: Option<String>,
}

impl EtcdTls {
    /// TLS that trusts the servers whose certificates `ca_pem` (PEM) signed.
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> EtcdTls {
        EtcdTls {
            ca_pem: Some(ca_pem.into()),
            ..EtcdTls::default()
        }
    }

    /// Presents a client certificate and its private key (both PEM).
    pub fn client_certificate(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> EtcdTls {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// The name the servers' certificates must carry, when it is not the endpoints' host.
    pub fn domain(mut self, domain: impl Into<String>) -> EtcdTls {
        self.domain = Some(domain.into());
        self
    }

    fn tonic(&self) -> TlsOptions {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &self.ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        if let Some((cert, key)) = &self.identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        if let Some(domain) = &self.domain {
            tls = tls.domain_name(domain.clone());
        }
        tls
    }
}

/// Opens an [`EtcdStore`]: the cluster's endpoints, the key prefix the log lives under, and how
/// to talk to the cluster.
///
/// ```no_run
/// # fn main() -> raftwal::Result<()> {
/// use std::time::Duration;
/// use raftwal::store::etcd::EtcdOptions;
/// use raftwal::store::Store as _;
///
/// let mut store = EtcdOptions::new(["http://10.0.0.1:2379", "http://10.0.0.2:2379"], "jobs/")
///     .user("journal", "secret")
///     .lease_ttl(Duration::from_secs(10))
///     .wait_for_owner(Duration::from_secs(15))
///     .open()?;
/// store.append(&[b"debit alice 10", b"credit bob 10"])?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    pub(crate) endpoints: Vec<String>,
    pub(crate) prefix: String,
    pub(crate) tls: Option<EtcdTls>,
    pub(crate) user: Option<(String, String)>,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) lease_ttl: Duration,
    pub(crate) wait_for_owner: Duration,
    pub(crate) max_txn_ops: usize,
    pub(crate) max_request_bytes: usize,
    pub(crate) chunk_size: usize,
    pub(crate) compact: bool,
}

impl EtcdOptions {
    /// A store under `prefix` (which must end in `/`, so that no other prefix's keys fall in
    /// its range) on the cluster at `endpoints` (`host:port`, `http://...` or `https://...`).
    pub fn new<E: Into<String>>(
        endpoints: impl IntoIterator<Item = E>,
        prefix: impl Into<String>,
    ) -> EtcdOptions {
        EtcdOptions {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            prefix: prefix.into(),
            tls: None,
            user: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            lease_ttl: Duration::from_secs(10),
            wait_for_owner: Duration::ZERO,
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            chunk_size: DEFAULT_CHUNK_SIZE,
            compact: true,
        }
    }

    /// Connects with TLS (endpoints without a scheme become `https://`).
    pub fn tls(mut self, tls: EtcdTls) -> EtcdOptions {
        self.tls = Some(tls);
        self
    }

    /// Authenticates as `user` with `password` (etcd's `--auth` users and roles).
    pub fn user(mut self, user: impl Into<String>, password: impl Into<String>) -> EtcdOptions {
        self.user = Some((user.into(), password.into()));
        self
    }

    /// How long connecting to an endpoint may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> EtcdOptions {
        self.connect_timeout = timeout;
        self
    }

    /// How long one request may take before it is an [`Error::StoreUnavailable`] (default
    /// 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> EtcdOptions {
        self.request_timeout = timeout;
        self
    }

    /// The time-to-live of the writer's lease (default 10 s, whole seconds, at least etcd's
    /// minimum): how long after a writer dies another may take over.
    pub fn lease_ttl(mut self, ttl: Duration) -> EtcdOptions {
        self.lease_ttl = ttl;
        self
    }

    /// How long `open` waits for another writer's ownership to end (its lease to expire, or
    /// its close) before failing with [`Error::Fenced`] (default: not at all).
    pub fn wait_for_owner(mut self, wait: Duration) -> EtcdOptions {
        self.wait_for_owner = wait;
        self
    }

    /// The server's `--max-txn-ops` (default 128): the most puts in one transaction.
    pub fn max_txn_ops(mut self, ops: usize) -> EtcdOptions {
        self.max_txn_ops = ops;
        self
    }

    /// The server's `--max-request-bytes` (default 1.5 MiB): the largest transaction.
    pub fn max_request_bytes(mut self, bytes: usize) -> EtcdOptions {
        self.max_request_bytes = bytes;
        self
    }

    /// The largest chunk a record is split into (default 256 KiB; it is capped to fit one
    /// transaction). Records up to this size are stored whole in one key.
    pub fn chunk_size(mut self, bytes: usize) -> EtcdOptions {
        self.chunk_size = bytes;
        self
    }

    /// Whether `delete_before` also compacts etcd's history up to the deletion (default on).
    /// etcd compacts the history of the whole keyspace, not of one prefix: turn this off on a
    /// cluster whose other users read old revisions, and let etcd's auto-compaction do it.
    pub fn compact(mut self, compact: bool) -> EtcdOptions {
        self.compact = compact;
        self
    }

    /// Connects, claims the log (waiting up to [`EtcdOptions::wait_for_owner`] for another
    /// owner to go) and recovers its state: the writer's store.
    pub fn open(&self) -> Result<EtcdStore> {
        EtcdStore::open(self.clone(), true)
    }

    /// Connects and reads the log's state without claiming it: a store for reading (dump,
    /// verify) while a writer may be at work. Its `append` and `delete_before` fail.
    pub fn open_read_only(&self) -> Result<EtcdStore> {
        EtcdStore::open(self.clone(), false)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.prefix.is_empty() || !self.prefix.ends_with('/') {
            return Err(Error::InvalidState {
                reason: "the etcd store's prefix must be non-empty and end in '/'",
            });
        }
        if self.endpoints.is_empty() {
            return Err(Error::InvalidState {
                reason: "the etcd store needs at least one endpoint",
            });
        }
        if self.max_txn_ops < 1 || self.max_request_bytes < 2 * super::layout::TXN_OVERHEAD {
            return Err(Error::InvalidState {
                reason: "the etcd store's transaction limits are too small",
            });
        }
        Ok(())
    }

    /// Connects to the cluster (authenticating now, so a wrong password fails here).
    pub(crate) async fn connect(&self) -> Result<Client> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_timeout(self.request_timeout)
            .with_keep_alive(Duration::from_secs(5), self.request_timeout)
            .with_require_leader(true)
            .with_auto_token_refresh(true);
        if let Some(tls) = &self.tls {
            options = options.with_tls(tls.tonic());
        }
        if let Some((user, password)) = &self.user {
            options = options.with_user(user.clone(), password.clone());
        }
        let context = format!("connecting to {}", self.endpoints.join(","));
        // A server that rejects a client certificate under TLS 1.3 does so after the client
        // finished its handshake: the client then sees either the server's alert or, when it
        // writes first, only a closed connection. Retrying gives the alert a few more chances
        // to arrive; if it never does, the error says what the closing likely means.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let err = match tokio::time::timeout(
                self.connect_timeout + self.request_timeout,
                Client::connect(&self.endpoints, Some(options.clone())),
            )
            .await
            {
                Ok(Ok(client)) => return Ok(client),
                Ok(Err(err)) => from_etcd(&context, err),
                Err(_) => return Err(timed_out(&context, self.connect_timeout)),
            };
            let closed = match &err {
                Error::StoreUnavailable { reason, .. } => {
                    self.tls.is_some()
                        && ["broken pipe", "connection reset", "stream closed"]
                            .iter()
                            .any(|sign| reason.contains(sign))
                }
                _ => false,
            };
            if !closed {
                return Err(err);
            }
            if attempts < 3 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let Error::StoreUnavailable { context, reason } = err else {
                return Err(err);
            };
            return Err(Error::StoreUnavailable {
                context,
                reason: format!(
                    "{reason} (the server closed TLS connections right after the handshake: \
                     it may not trust the client certificate)"
                ),
            });
        }
    }
}
