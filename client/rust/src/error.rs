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
    },
    /// A streamed batch was refused; nothing of it was written.
    #[error("batch {sequence} refused ({}): {message}{}; refused ids: {}", code_name(*.code), violations_suffix(.message, .violations), .document_ids.join(", "))]
    BatchRejected {
        /// The batch's sequence number.
        sequence: u64,
        /// The status code the refusal corresponds to.
        code: Code,
        /// The server's message.
        message: String,
        /// Field violations naming the documents.
        violations: Vec<FieldViolation>,
        /// Ids of the documents the violations name.
        document_ids: Vec<String>,
    },
    /// The server could not be reached.
    #[error("cannot connect to {url} (is the server running?)")]
    Connect {
        /// The server URL.
        url: String,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The arguments were unusable before anything was sent.
    #[error("{0}")]
    InvalidInput(String),
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

    /// Whether a retry may succeed (the server or database was unavailable).
    pub fn is_retryable(&self) -> bool {
        self.code() == Some(Code::Unavailable)
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
        Error::Status {
            code: status.code(),
            message: status.message().to_owned(),
            violations,
        }
    }
}
