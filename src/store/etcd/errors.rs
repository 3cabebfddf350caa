//! etcd's errors as raftwal's: what the caller can do about each (retry, fix credentials, free
//! space, stop writing).

use std::error::Error as _;
use std::time::Duration;

use etcd_client::Error as EtcdError;
use tonic::Code;

use crate::error::Error;

/// The whole chain of an error's sources in one line: tonic hides a TLS or connection failure
/// several sources deep.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Whether a transport failure is the TLS handshake refusing a certificate (ours or the
/// server's), which no retry fixes.
fn is_certificate_failure(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    // Only words of a verdict on a certificate: a connection closed mid-stream (a member
    // restarting) must stay "unavailable", which is retried.
    ["certificate", "unknownissuer", "fatal alert"]
        .iter()
        .any(|word| text.contains(word))
}

/// Converts an etcd client error met while doing `context`.
pub(crate) fn from_etcd(context: &str, err: EtcdError) -> Error {
    let context = context.to_string();
    match &err {
        EtcdError::GRpcStatus(status) => {
            let message = status.message().to_string();
            // tonic says "transport error" and keeps the cause (a refused connection, a TLS
            // alert) as the status's source.
            let reason = match status.source() {
                Some(source) if message.is_empty() => chain(source),
                Some(source) => format!("{message}: {}", chain(source)),
                None => message,
            };
            let lower = reason.to_ascii_lowercase();
            match status.code() {
                Code::PermissionDenied | Code::Unauthenticated => {
                    Error::AccessDenied { context, reason }
                }
                Code::InvalidArgument
                    if lower.contains("authentication failed")
                        || lower.contains("user name")
                        || lower.contains("auth token") =>
                {
                    Error::AccessDenied { context, reason }
                }
                Code::ResourceExhausted if lower.contains("space") => {
                    Error::StoreFull { context, reason }
                }
                Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Cancelled
                | Code::Aborted
                | Code::ResourceExhausted
                | Code::Unknown => {
                    if is_certificate_failure(&reason) {
                        Error::AccessDenied { context, reason }
                    } else {
                        Error::StoreUnavailable { context, reason }
                    }
                }
                _ => Error::Store { context, reason },
            }
        }
        EtcdError::TransportError(_) | EtcdError::IoError(_) => {
            let reason = chain(&err);
            if is_certificate_failure(&reason) {
                Error::AccessDenied { context, reason }
            } else {
                Error::StoreUnavailable { context, reason }
            }
        }
        _ => Error::Store {
            context,
            reason: chain(&err),
        },
    }
}

/// The error of a request that did not finish within `timeout`.
pub(crate) fn timed_out(context: &str, timeout: Duration) -> Error {
    Error::StoreUnavailable {
        context: context.to_string(),
        reason: format!("no answer within {timeout:?}"),
    }
}
