//! The handler layer's error, and its one mapping to `tonic::Status`.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::IssueKeyError;
use crate::domain::{AccessDenied, InvalidKind, InvalidRequest};
use crate::store::StoreError;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request was refused before anything ran.
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    /// The request's key may not touch what the request names.
    #[error(transparent)]
    Denied(#[from] AccessDenied),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// RevokeKey names a key that does not exist, or that the caller may
    /// not manage; the message says which id.
    #[error("{0}")]
    KeyNotFound(String),
    /// No random bytes for a new key.
    #[error("cannot make a key: {0}")]
    KeyGeneration(String),
    /// A search by example names a document that does not exist.
    #[error("document {0:?} (example_id) does not exist")]
    ExampleNotFound(String),
}

/// The gRPC code for a refusal.
pub fn code_of(kind: InvalidKind) -> Code {
    match kind {
        InvalidKind::InvalidArgument => Code::InvalidArgument,
        InvalidKind::ResourceExhausted => Code::ResourceExhausted,
        InvalidKind::FailedPrecondition => Code::FailedPrecondition,
    }
}

impl From<IssueKeyError> for ApiError {
    fn from(error: IssueKeyError) -> Self {
        match error {
            IssueKeyError::Store(error) => Self::Store(error),
            IssueKeyError::Random(error) => Self::KeyGeneration(error.to_string()),
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Invalid(invalid) => {
                let mut details = ErrorDetails::new();
                for v in &invalid.violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                Status::with_error_details(code_of(invalid.kind), invalid.to_string(), details)
            }
            ApiError::Denied(denied) => Status::permission_denied(denied.to_string()),
            error @ (ApiError::ExampleNotFound(_) | ApiError::KeyNotFound(_)) => Status::not_found(error.to_string()),
            error @ ApiError::KeyGeneration(_) => {
                tracing::error!(%error, "internal error");
                Status::internal("internal error; the server log has the details")
            }
            ApiError::Store(StoreError::CollectionNotFound(name)) => {
                Status::not_found(format!("collection {:?} does not exist", name.as_str()))
            }
            ApiError::Store(StoreError::CollectionDropped(name)) => Status::not_found(format!(
                "collection {:?} was dropped while this request was using it; nothing more was written",
                name.as_str()
            )),
            ApiError::Store(StoreError::CollectionRecreated(name)) => Status::failed_precondition(format!(
                "collection {:?} was dropped and created again while this request was using it; nothing more was \
                 written (open a new stream to write to the new collection)",
                name.as_str()
            )),
            ApiError::Store(error @ StoreError::LegacyStream(_)) => Status::failed_precondition(format!(
                "{error}: use a new stream id (upserts by id are idempotent, so nothing is duplicated)"
            )),
            ApiError::Store(StoreError::CollectionExists(name)) => {
                Status::already_exists(format!("collection {:?} already exists", name.as_str()))
            }
            ApiError::Store(ref store @ StoreError::NameTaken { ref field, .. }) => {
                with_field(Code::AlreadyExists, field, store.to_string())
            }
            ApiError::Store(
                ref store @ (StoreError::AliasNotFound { ref field, .. }
                | StoreError::AliasTargetNotFound { ref field, .. }),
            ) => with_field(Code::NotFound, field, store.to_string()),
            ApiError::Store(ref store @ StoreError::AliasDenied { ref field, .. }) => {
                with_field(Code::PermissionDenied, field, store.to_string())
            }
            ApiError::Store(StoreError::UnknownLanguage(language)) => {
                Status::from(ApiError::Invalid(InvalidRequest::field(
                    "text_language",
                    format!("{language:?} is not a text-search configuration of this database (see pg_ts_config)"),
                )))
            }
            ApiError::Store(error @ StoreError::StreamTenantMismatch { .. }) => Status::from(ApiError::Invalid(
                InvalidRequest::with_kind(InvalidKind::FailedPrecondition, "open.stream_id", error.to_string()),
            )),
            ApiError::Store(
                error @ (StoreError::TextTooLongForIndex { .. } | StoreError::UpdatedMetadataTooLarge { .. }),
            ) => Status::from(ApiError::Invalid(error.as_refusal().expect("a refusal"))),
            ApiError::Store(StoreError::StatementTimeout) => Status::deadline_exceeded(
                "the request's statement ran past its time limit (the call's deadline, or the server's statement \
                 timeout) and was cancelled; nothing of it was written; allow more time, narrow the request (a \
                 filter, a smaller batch) or retry later",
            ),
            ApiError::Store(error @ StoreError::PoolExhausted { .. }) => {
                tracing::warn!(%error, "database pool exhausted");
                crate::transport::concurrency_limit::busy(format!(
                    "the server is busy: {error}; retry with backoff (the operator can raise --max-connections)"
                ))
            }
            ApiError::Store(error @ (StoreError::Unavailable(_) | StoreError::CannotConnect { .. })) => {
                tracing::warn!(%error, "database unavailable");
                Status::unavailable("the database is unavailable; retry when it is back")
            }
            ApiError::Store(StoreError::DatabaseDown) => Status::unavailable(
                "the database is down (the server's health probe cannot reach it; grpc.health.v1 says \
                 NOT_SERVING); retry with backoff",
            ),
            ApiError::Store(
                error @ (StoreError::Migration(_)
                | StoreError::TaskFailed(_)
                | StoreError::Corrupt(_)
                | StoreError::Database(_)),
            ) => {
                tracing::error!(%error, "internal error");
                Status::internal("internal error; the server log has the details")
            }
        }
    }
}

/// A status of `code` whose message (`field: what is wrong`) names the
/// field, and whose BadRequest details name it as INVALID_ARGUMENT's do.
fn with_field(code: Code, field: &str, message: String) -> Status {
    let description = message.strip_prefix(&format!("{field}: ")).unwrap_or(&message);
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(field, description);
    Status::with_error_details(code, message.clone(), details)
}
