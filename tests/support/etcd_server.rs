//! Real etcd servers (Debian's `etcd-server`, `/usr/bin/etcd`) for the etcd store's tests: one
//! or three members on 127.0.0.1 with ephemeral ports and a temporary data dir each, killed
//! when the fixture is dropped. Include with `#[path = "support/skip.rs"] mod skip;` and
//! `#[path = "support/etcd_server.rs"] mod etcd_server;`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether the etcd binary runs; if not, prints the one `SKIPPED` line for `test`.
pub fn available(test: &str) -> bool {
    if crate::skip::runs("etcd", &["--version"]) {
        true
    } else {
        crate::skip::skipped(test, "etcd-server");
        false
    }
}

/// A port on 127.0.0.1 nothing listens on (free when this returns; good enough for tests).
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

fn free_ports(count: usize) -> Vec<u16> {
    // Hold every listener until all ports are chosen, so no port is handed out twice.
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("local addr").port())
        .collect()
}

/// Server-side TLS: the files etcd is started with.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: PathBuf,
    /// `--client-cert-auth`: clients must present a certificate the CA signed.
    pub client_cert_auth: bool,
}

/// How to start a cluster.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub members: usize,
    pub tls: Option<ServerTls>,
    /// Extra flags for every member (e.g. `--quota-backend-bytes`).
    pub args: Vec<String>,
}

/// One etcd process.
pub struct Member {
    pub name: String,
    pub client_url: String,
    pub data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Member {
    /// The member's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILLs the member (a crash) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// A running cluster on loopback; every member is killed and its data removed on drop.
pub struct Etcd {
    pub members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl Etcd {
    /// A single member without TLS or auth.
    pub fn single() -> Etcd {
        Etcd::start(Config {
            members: 1,
            ..Config::default()
        })
    }

    /// Starts the members and waits until each serves clients.
    pub fn start(config: Config) -> Etcd {
        let dir = tempfile::tempdir().expect("tempdir");
        let count = config.members.max(1);
        let ports = free_ports(2 * count);
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let names: Vec<String> = (0..count).map(|i| format!("m{i}")).collect();
        let peer_urls: Vec<String> = (0..count)
            .map(|i| format!("http://127.0.0.1:{}", ports[2 * i + 1]))
            .collect();
        let initial_cluster: Vec<String> = names
            .iter()
            .zip(&peer_urls)
            .map(|(name, url)| format!("{name}={url}"))
            .collect();
        let mut members = Vec::new();
        for i in 0..count {
            let client_url = format!("{scheme}://127.0.0.1:{}", ports[2 * i]);
            let data_dir = dir.path().join(&names[i]);
            let log = dir.path().join(format!("{}.log", names[i]));
            let log_file = std::fs::File::create(&log).expect("create the member's log");
            let mut command = Command::new("etcd");
            command
                .args(["--name", &names[i]])
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_urls[i]])
                .args(["--initial-advertise-peer-urls", &peer_urls[i]])
                .args(["--initial-cluster", &initial_cluster.join(",")])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "raftwal-test"])
                // Fast elections (and a 1 s minimum lease TTL) keep the failure tests short.
                .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
                .args(["--logger", "zap", "--log-outputs", "stderr"])
                .args(&config.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file);
            if let Some(tls) = &config.tls {
                command
                    .arg("--cert-file")
                    .arg(&tls.cert_file)
                    .arg("--key-file")
                    .arg(&tls.key_file)
                    .arg("--trusted-ca-file")
                    .arg(&tls.ca_file);
                if tls.client_cert_auth {
                    command.arg("--client-cert-auth");
                }
            }
            let child = command.spawn().expect("start etcd");
            members.push(Member {
                name: names[i].clone(),
                client_url,
                data_dir,
                log,
                child: Some(child),
            });
        }
        let etcd = Etcd { members, _dir: dir };
        etcd.wait_ready(Duration::from_secs(30));
        etcd
    }

    fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for member in &self.members {
            loop {
                if member.log().contains("serving client traffic") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd member {} did not start:\n{}",
                    member.name,
                    member.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The client URLs of the members still running.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|member| member.is_running())
            .map(|member| member.client_url.clone())
            .collect()
    }

    /// The first member's data dir.
    pub fn data_dir(&self) -> &Path {
        &self.members[0].data_dir
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for member in &mut self.members {
            member.kill();
        }
    }
}
