//! `raftwal etcd dump|verify` (feature `etcd`): a journal's records in an etcd store, read
//! without claiming the log, so a running writer is left alone.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;
use raftwal::store::etcd::{EtcdOptions, EtcdStore, EtcdTls};
use raftwal::store::Store as _;

use crate::failure::{Failure, FAILED};
use crate::output::bytes_text;
use crate::Outcome;

/// Where the store is and how to reach it (the same options as etcdctl's).
#[derive(Debug, clap::Args)]
pub struct Connection {
    /// The cluster's client endpoints, comma-separated (host:port, http://..., https://...).
    #[arg(
        long = "etcd",
        value_name = "ENDPOINTS",
        value_delimiter = ',',
        required = true
    )]
    endpoints: Vec<String>,
    /// The store's key prefix (ends in `/`).
    #[arg(long)]
    prefix: String,
    /// The CA certificate (PEM) that signed the servers' certificates; turns TLS on.
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// This client's certificate (PEM), for clusters that ask for one.
    #[arg(long, value_name = "FILE", requires = "key", requires = "cacert")]
    cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// USER:PASSWORD for etcd's auth, or USER with the password in $RAFTWAL_ETCD_PASSWORD.
    #[arg(long, value_name = "USER[:PASSWORD]")]
    user: Option<String>,
    /// Seconds connecting, or one request, may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    timeout: u64,
}

/// The `etcd` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every record: its index, length and bytes (escaped text, or hex).
    Dump {
        #[command(flatten)]
        connection: Connection,
        /// Show at most this many bytes of each record (0: all of them).
        #[arg(long, value_name = "N", default_value_t = 64)]
        max_bytes: usize,
    },
    /// Read every record (checksums, chunks, no gaps, no foreign keys) and report the range.
    Verify {
        #[command(flatten)]
        connection: Connection,
    },
}

/// Runs `raftwal etcd ...`.
pub fn run(command: &Command) -> Outcome {
    match command {
        Command::Dump {
            connection,
            max_bytes,
        } => dump(connection, *max_bytes),
        Command::Verify { connection } => verify(connection),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .map_err(|err| Failure::new(FAILED, format!("reading {}: {err}", path.display())))
}

fn open(connection: &Connection) -> Result<EtcdStore, Failure> {
    let timeout = Duration::from_secs(connection.timeout.max(1));
    let mut options = EtcdOptions::new(connection.endpoints.clone(), connection.prefix.clone())
        .connect_timeout(timeout)
        .request_timeout(timeout);
    if let Some(cacert) = &connection.cacert {
        let mut tls = EtcdTls::new(read_file(cacert)?);
        if let (Some(cert), Some(key)) = (&connection.cert, &connection.key) {
            tls = tls.client_certificate(read_file(cert)?, read_file(key)?);
        }
        options = options.tls(tls);
    }
    if let Some(user) = &connection.user {
        let (name, password) = match user.split_once(':') {
            Some((name, password)) => (name.to_string(), password.to_string()),
            None => (
                user.clone(),
                std::env::var("RAFTWAL_ETCD_PASSWORD").map_err(|_| {
                    Failure::new(
                        FAILED,
                        "--user without a password needs $RAFTWAL_ETCD_PASSWORD",
                    )
                })?,
            ),
        };
        options = options.user(name, password);
    }
    Ok(options.open_read_only()?)
}

/// A record's bytes on one line: escaped text when mostly printable, hex otherwise.
fn shown(bytes: &[u8], max: usize) -> String {
    let cut = if max == 0 {
        bytes.len()
    } else {
        bytes.len().min(max)
    };
    let part = &bytes[..cut];
    let more = if cut < bytes.len() { "..." } else { "" };
    let printable = part.iter().filter(|b| (0x20..0x7f).contains(*b)).count();
    if printable * 4 >= part.len() * 3 {
        format!("\"{}\"{more}", part.escape_ascii())
    } else {
        let hex: String = part.iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}{more}")
    }
}

fn dump(connection: &Connection, max_bytes: usize) -> Outcome {
    let mut store = open(connection)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut write_error = None;
    let result = store.read_from(1, &mut |index, bytes| {
        if let Err(err) = writeln!(out, "{index}\t{}\t{}", bytes.len(), shown(bytes, max_bytes)) {
            write_error = Some(err);
            return Err(raftwal::Error::InvalidState {
                reason: "the output closed",
            });
        }
        Ok(())
    });
    if let Some(err) = write_error {
        return Err(err.into());
    }
    result?;
    out.flush()?;
    Ok(())
}

fn verify(connection: &Connection) -> Outcome {
    let mut store = open(connection)?;
    let mut count = 0u64;
    let mut bytes = 0u64;
    store.read_from(1, &mut |_, record| {
        count += 1;
        bytes += record.len() as u64;
        Ok(())
    })?;
    let range = if count == 0 {
        format!("no records (the next index is {})", store.last_index() + 1)
    } else {
        format!(
            "records {}..={} ({count} records, {})",
            store.first_index(),
            store.last_index(),
            bytes_text(bytes)
        )
    };
    writeln!(
        io::stdout(),
        "ok: the etcd store at {:?} on {} is sound: {range}",
        connection.prefix,
        connection.endpoints.join(","),
    )?;
    Ok(())
}
