//! The etcd store on a cluster run as production runs it: TLS with a CA (made here, thrown
//! away after) and client certificates, and etcd's auth with a user whose role covers only the
//! store's prefix. Wrong credentials of every kind are a typed error, quickly. Run with
//! `cargo test -p raftwal --features etcd --test store_etcd_tls`.

#[path = "support/etcd_raw.rs"]
mod etcd_raw;
#[path = "support/etcd_server.rs"]
mod etcd_server;
#[path = "support/skip.rs"]
mod skip;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use etcd_client::{Certificate, ConnectOptions, Identity, Permission, TlsOptions};
use etcd_raw::Raw;
use etcd_server::{Config, Etcd, ServerTls};
use raftwal::store::etcd::{EtcdOptions, EtcdTls};
use raftwal::store::Store;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

const PASSWORD: &str = "journal-secret";

/// A certificate authority that lives for one test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `127.0.0.1` and `localhost`, usable by servers and clients.
    fn leaf(&self, common_name: &str) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// A TLS cluster with client-certificate auth and etcd's auth on: `root`, a `journal` user
/// whose role may read and write `jobs/` only, and an `outsider` whose role covers `other/`.
struct Secured {
    etcd: Etcd,
    ca: Ca,
    client: Leaf,
    _certs: tempfile::TempDir,
}

impl Secured {
    fn start() -> Secured {
        let ca = Ca::new("raftwal test ca");
        let server = ca.leaf("etcd");
        let client = ca.leaf("raftwal-client");
        let certs = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = certs.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let tls = ServerTls {
            cert_file: write("server.pem", &server.cert),
            key_file: write("server-key.pem", &server.key),
            ca_file: write("ca.pem", &ca.pem()),
            client_cert_auth: true,
        };
        let etcd = Etcd::start(Config {
            members: 1,
            tls: Some(tls),
            ..Config::default()
        });
        let secured = Secured {
            etcd,
            ca,
            client,
            _certs: certs,
        };
        secured.enable_auth();
        secured
    }

    fn client_tls(&self) -> TlsOptions {
        TlsOptions::new()
            .ca_certificate(Certificate::from_pem(self.ca.pem()))
            .identity(Identity::from_pem(&self.client.cert, &self.client.key))
    }

    fn enable_auth(&self) {
        let raw = Raw::connect_with(
            &self.etcd.endpoints(),
            Some(ConnectOptions::new().with_tls(self.client_tls())),
        );
        let mut client = raw.client.clone();
        raw.runtime.block_on(async {
            client.user_add("root", "root-secret", None).await.unwrap();
            client.role_add("root").await.unwrap();
            client.user_grant_role("root", "root").await.unwrap();
            for (user, role, prefix) in [
                ("journal", "jobs-rw", "jobs/"),
                ("outsider", "other-rw", "other/"),
            ] {
                client.role_add(role).await.unwrap();
                client
                    .role_grant_permission(role, Permission::read_write(prefix).with_prefix())
                    .await
                    .unwrap();
                client.user_add(user, PASSWORD, None).await.unwrap();
                client.user_grant_role(user, role).await.unwrap();
            }
            client.auth_enable().await.unwrap();
        });
    }

    fn tls(&self) -> EtcdTls {
        EtcdTls::new(self.ca.pem())
            .client_certificate(self.client.cert.clone(), self.client.key.clone())
    }

    fn options(&self, prefix: &str) -> EtcdOptions {
        EtcdOptions::new(self.etcd.endpoints(), prefix)
            .lease_ttl(Duration::from_secs(2))
            .connect_timeout(Duration::from_secs(2))
            .request_timeout(Duration::from_secs(3))
    }
}

fn skip_without_etcd(test: &str) -> bool {
    !etcd_server::available(test)
}

/// Runs `open` and checks it fails with an access error within a bounded time.
fn assert_denied_quickly(open: impl FnOnce() -> raftwal::Result<raftwal::store::etcd::EtcdStore>) {
    let started = Instant::now();
    let err = open().expect_err("access must be denied");
    assert!(err.is_access_denied(), "{err} ({err:?})");
    eprintln!("denied as expected: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_user_limited_to_the_prefix_writes_and_reads_over_tls() {
    if skip_without_etcd("a_user_limited_to_the_prefix_writes_and_reads_over_tls") {
        return;
    }
    let secured = Secured::start();
    let options = secured
        .options("jobs/")
        .tls(secured.tls())
        .user("journal", PASSWORD);
    let mut store = options.open().unwrap();
    store
        .append(&[b"one", &vec![9u8; 600 << 10], b"three"])
        .unwrap();
    store.delete_before(2).unwrap();
    Box::new(store).close().unwrap();
    let mut store = options.open().unwrap();
    let mut read = Vec::new();
    store
        .read_from(1, &mut |index, bytes| {
            read.push((index, bytes.len()));
            Ok(())
        })
        .unwrap();
    assert_eq!(read, [(2, 600 << 10), (3, 5)]);
}

#[test]
fn a_wrong_password_is_access_denied() {
    if skip_without_etcd("a_wrong_password_is_access_denied") {
        return;
    }
    let secured = Secured::start();
    let options = secured
        .options("jobs/")
        .tls(secured.tls())
        .user("journal", "wrong");
    assert_denied_quickly(|| options.open());
}

#[test]
fn a_user_without_permission_on_the_prefix_is_access_denied() {
    if skip_without_etcd("a_user_without_permission_on_the_prefix_is_access_denied") {
        return;
    }
    let secured = Secured::start();
    let options = secured
        .options("jobs/")
        .tls(secured.tls())
        .user("outsider", PASSWORD);
    assert_denied_quickly(|| options.open());
}

#[test]
fn a_server_certificate_from_another_ca_is_access_denied() {
    if skip_without_etcd("a_server_certificate_from_another_ca_is_access_denied") {
        return;
    }
    let secured = Secured::start();
    let stranger = Ca::new("another ca");
    let tls = EtcdTls::new(stranger.pem())
        .client_certificate(secured.client.cert.clone(), secured.client.key.clone());
    let options = secured.options("jobs/").tls(tls).user("journal", PASSWORD);
    assert_denied_quickly(|| options.open());
}

#[test]
fn a_client_certificate_the_cluster_does_not_trust_is_access_denied() {
    if skip_without_etcd("a_client_certificate_the_cluster_does_not_trust_is_access_denied") {
        return;
    }
    let secured = Secured::start();
    let stranger = Ca::new("another ca").leaf("raftwal-client");
    let tls = EtcdTls::new(secured.ca.pem()).client_certificate(stranger.cert, stranger.key);
    let options = secured.options("jobs/").tls(tls).user("journal", PASSWORD);
    // Under TLS 1.3 the server's verdict on the client's certificate can lose the race with
    // the client's first write, which then sees only a closed connection: the store retries,
    // and if the alert never arrives, says that the certificate is the likely cause.
    let started = Instant::now();
    let err = options.open().expect_err("access must be denied");
    assert!(
        err.is_access_denied()
            || (err.is_unavailable() && err.to_string().contains("client certificate")),
        "{err} ({err:?})"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn plain_text_to_a_tls_cluster_fails_quickly() {
    if skip_without_etcd("plain_text_to_a_tls_cluster_fails_quickly") {
        return;
    }
    let secured = Secured::start();
    let endpoint = secured.etcd.endpoints()[0].replace("https://", "http://");
    let started = Instant::now();
    let err = EtcdOptions::new([endpoint], "jobs/")
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(3))
        .user("journal", PASSWORD)
        .open()
        .unwrap_err();
    assert!(err.is_unavailable() || err.is_access_denied(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
