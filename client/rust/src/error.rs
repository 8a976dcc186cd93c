//! The client's one error type.

use tonic::Code;
use tonic_types::StatusExt;

/// One invalid field, as the server reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path to the field, such as `documents[3].vector`.
    pub field: String,
    /// What is wrong, naming the limit.
    pub description: String,
}

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status.
    #[error("{}: {message}{}", code_name(*.code), violations_suffix(.message, .violations))]
    Status {
        /// The gRPC code.
        code: Code,
        /// The server's message.
        message: String,
        /// Field violations (INVALID_ARGUMENT and friends).
        violations: Vec<FieldViolation>,
        /// Whether the server refused because it was busy: RESOURCE_EXHAUSTED
        /// with a `google.rpc.RetryInfo` detail. Such a refusal did nothing,
        /// and a retry with backoff may succeed (`docs/retries.md`).
        busy: bool,
    },
    /// A streamed batch was refused; nothing of it was written.
    #[error("batch of documents {first_position}.. refused ({}): {message}{}{}", code_name(*.code), violations_suffix(.message, .violations), ids_suffix(.document_ids))]
    BatchRejected {
        /// The batch's sequence number in its call.
        sequence: u64,
        /// Input position (0-based) of the batch's first document.
        first_position: u64,
        /// The status code the refusal corresponds to.
        code: Code,
        /// The server's message.
        message: String,
        /// Field violations naming the documents.
        violations: Vec<FieldViolation>,
        /// Ids of the documents the violations name.
        document_ids: Vec<String>,
    },
    /// The server could not be reached, or the TLS handshake with it failed.
    #[error("cannot connect to {url}{}", connect_reason(.source))]
    Connect {
        /// The server URL.
        url: String,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The arguments or the input were unusable; what they would have
    /// become was not sent.
    #[error("{0}")]
    InvalidInput(String),
    /// A resumable stream's input is not the one committed under its stream
    /// id (its first documents have other ids, or there are fewer); nothing
    /// was sent.
    #[error("cannot resume: {0}")]
    ResumeMismatch(String),
    /// The server broke the protocol (a bug on one side).
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// The canonical name of a gRPC code, as grpcurl and the gRPC docs print it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn ids_suffix(ids: &[String]) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!("; refused ids: {}", ids.join(", "))
    }
}

/// The violations the message does not already spell out (the server's
/// message summarises the first few).
fn violations_suffix(message: &str, violations: &[FieldViolation]) -> String {
    let listed: Vec<String> = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .filter(|line| !message.contains(line.as_str()))
        .collect();
    if listed.is_empty() {
        String::new()
    } else {
        format!(" [{}]", listed.join("; "))
    }
}

impl Error {
    /// The gRPC code, where there is one.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Status { code, .. } | Error::BatchRejected { code, .. } => Some(*code),
            Error::Connect { .. } => Some(Code::Unavailable),
            _ => None,
        }
    }

    /// The field violations, where there are any.
    pub fn violations(&self) -> &[FieldViolation] {
        match self {
            Error::Status { violations, .. } | Error::BatchRejected { violations, .. } => violations,
            _ => &[],
        }
    }

    /// Whether the connection broke under the call (a transport failure,
    /// not a status the server sent).
    pub fn is_broken_connection(&self) -> bool {
        matches!(self, Error::Status { code: Code::Unavailable, message, .. } if message.starts_with(BROKEN_CONNECTION))
    }

    /// Whether the server refused because it was busy (RESOURCE_EXHAUSTED
    /// with a `google.rpc.RetryInfo` detail), not because of the request.
    pub fn is_busy(&self) -> bool {
        matches!(self, Error::Status { busy: true, .. })
    }

    /// Whether the retry table (`docs/retries.md`) retries this error: the
    /// server or database was unavailable, the connection to it broke, or
    /// the server was busy. See [`crate::retry::is_retryable`].
    pub fn is_retryable(&self) -> bool {
        crate::retry::is_retryable(self)
    }
}

/// Whether a status came from this side's transport (the connection broke:
/// the server was killed, a proxy cut it) rather than from the server. The
/// server never attaches a source error; tonic does for h2 and I/O errors,
/// which it reports as UNKNOWN or INTERNAL.
fn is_transport_failure(status: &tonic::Status) -> bool {
    use std::error::Error as _;
    matches!(status.code(), Code::Unknown | Code::Internal | Code::Cancelled)
        && (status.source().is_some()
            || [
                "h2 protocol error",
                "transport error",
                "connection error",
                "broken pipe",
            ]
            .iter()
            .any(|sign| status.message().contains(sign)))
}

/// How the message of a call whose connection broke begins.
const BROKEN_CONNECTION: &str = "the connection to the server broke";

/// Why connecting failed, as the tail of [`Error::Connect`]'s message.
fn connect_reason(source: &tonic::transport::Error) -> String {
    match tls_failure(source) {
        Some(tls) => format!(": TLS handshake failed: {}", tls_advice(tls)),
        None => " (is the server running?)".to_owned(),
    }
}

/// The rustls error behind `error`, if a TLS handshake failed. It travels
/// as the payload of an `io::Error`, whose `source()` skips it.
fn tls_failure<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let payload = current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        if let Some(tls) = payload.and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            return Some(tls);
        }
        cause = current.source();
    }
    None
}

/// What a failed handshake means and what to change, for the cases users meet.
fn tls_advice(error: &rustls::Error) -> String {
    use rustls::{AlertDescription, CertificateError};
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            format!(
                "the server's certificate is not trusted ({error}); give the CA that signed it \
                 (ClientBuilder::ca_certificate; fathom --tls-ca)"
            )
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the server's certificate is for another name ({error}); connect by a name it lists, or set \
             ClientBuilder::server_name"
        ),
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server requires a client certificate (mutual TLS); give one \
             (ClientBuilder::identity; fathom --tls-client-cert and --tls-client-key)"
                .to_owned()
        }
        rustls::Error::AlertReceived(
            AlertDescription::BadCertificate | AlertDescription::UnknownCA | AlertDescription::CertificateUnknown,
        ) => format!(
            "the server refused the client certificate ({error}); use one signed by the CA the server trusts \
             for clients"
        ),
        _ => error.to_string(),
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let violations = status
            .get_details_bad_request()
            .map(|bad| {
                bad.field_violations
                    .into_iter()
                    .map(|v| FieldViolation {
                        field: v.field,
                        description: v.description,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(tls) = tls_failure(&status) {
            return Error::Status {
                code: Code::Unavailable,
                message: format!("TLS handshake failed: {}", tls_advice(tls)),
                violations,
                busy: false,
            };
        }
        if is_transport_failure(&status) {
            return Error::Status {
                code: Code::Unavailable,
                message: format!("{BROKEN_CONNECTION} ({})", status.message()),
                violations,
                busy: false,
            };
        }
        Error::Status {
            code: status.code(),
            message: status.message().to_owned(),
            violations,
            busy: status.code() == Code::ResourceExhausted && status.get_details_retry_info().is_some(),
        }
    }
}
