//! A plain etcd client (etcd-client on its own tokio runtime) for what the etcd store's tests
//! do behind the store's back: list keys, plant keys, revoke a lease, set up auth. Include with
//! `#[path = "support/etcd_raw.rs"] mod etcd_raw;` (the tests need the `etcd` feature).
#![allow(dead_code)]

/// A plain etcd client for what the tests do behind the store's back (list keys, plant
/// foreign keys, revoke a lease, set up auth).
pub struct Raw {
    pub runtime: tokio::runtime::Runtime,
    pub client: etcd_client::Client,
}

impl Raw {
    pub fn connect(endpoints: &[String]) -> Raw {
        Raw::connect_with(endpoints, None)
    }

    pub fn connect_with(endpoints: &[String], options: Option<etcd_client::ConnectOptions>) -> Raw {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let client = runtime
            .block_on(etcd_client::Client::connect(endpoints, options))
            .expect("connect a plain client");
        Raw { runtime, client }
    }

    /// Every key under `prefix`, in order.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut client = self.client.clone();
        let options = etcd_client::GetOptions::new()
            .with_prefix()
            .with_keys_only();
        let response = self
            .runtime
            .block_on(client.get(prefix, Some(options)))
            .expect("list keys");
        response
            .kvs()
            .iter()
            .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
            .collect()
    }

    pub fn get(&self, key: &str) -> Option<etcd_client::KeyValue> {
        let mut client = self.client.clone();
        let response = self
            .runtime
            .block_on(client.get(key, None))
            .expect("get a key");
        response.kvs().first().cloned()
    }

    pub fn put(&self, key: &str, value: &[u8]) {
        let mut client = self.client.clone();
        self.runtime
            .block_on(client.put(key, value, None))
            .expect("put a key");
    }

    pub fn delete(&self, key: &str) {
        let mut client = self.client.clone();
        self.runtime
            .block_on(client.delete(key, None))
            .expect("delete a key");
    }

    /// The cluster's current revision.
    pub fn revision(&self) -> i64 {
        let mut client = self.client.clone();
        let response = self
            .runtime
            .block_on(client.get("\0", None))
            .expect("read the revision");
        response.header().expect("a header").revision()
    }

    pub fn revoke(&self, lease: i64) {
        let mut client = self.client.clone();
        self.runtime
            .block_on(client.lease_revoke(lease))
            .expect("revoke a lease");
    }
}
