//! The one error domain validation produces: a list of field violations.

use std::fmt;

/// Which status a refusal maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// The request is malformed (INVALID_ARGUMENT).
    InvalidArgument,
    /// The request exceeds a configured size limit (RESOURCE_EXHAUSTED).
    ResourceExhausted,
    /// The request is well-formed but does not fit the collection's state,
    /// such as a tenant on a collection that has none (FAILED_PRECONDITION).
    FailedPrecondition,
}

/// One invalid field: its path in the request and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path to the field, such as `documents[3].vector`.
    pub field: String,
    /// What is wrong, naming the limit where there is one.
    pub description: String,
}

/// A refused request: every violation found, and the status they map to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidRequest {
    /// The status the refusal maps to.
    pub kind: InvalidKind,
    /// Every problem found, at least one.
    pub violations: Vec<FieldViolation>,
}

impl InvalidRequest {
    /// A refusal with one INVALID_ARGUMENT violation.
    pub fn field(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::with_kind(InvalidKind::InvalidArgument, field, description)
    }

    /// A refusal with one violation of the given kind.
    pub fn with_kind(kind: InvalidKind, field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            kind,
            violations: vec![FieldViolation {
                field: field.into(),
                description: description.into(),
            }],
        }
    }
}

impl fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = 3;
        for (i, v) in self.violations.iter().take(shown).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            // A violation of the request as a whole names no field.
            if v.field.is_empty() {
                f.write_str(&v.description)?;
            } else {
                write!(f, "{}: {}", v.field, v.description)?;
            }
        }
        if self.violations.len() > shown {
            write!(f, "; and {} more", self.violations.len() - shown)?;
        }
        Ok(())
    }
}

/// Collects violations while a request is checked, so a client hears about
/// every problem at once rather than one per round trip.
#[derive(Debug, Default)]
pub struct Violations {
    kind: Option<InvalidKind>,
    list: Vec<FieldViolation>,
}

/// At most this many violations are reported for one request; a batch of a
/// thousand bad vectors does not need a thousand lines.
const MAX_REPORTED: usize = 100;

impl Violations {
    /// Records an INVALID_ARGUMENT violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.add_kind(InvalidKind::InvalidArgument, field, description);
    }

    /// Records a violation of the given kind. RESOURCE_EXHAUSTED wins over the
    /// others, since a client must shrink the request before anything else helps.
    pub fn add_kind(&mut self, kind: InvalidKind, field: impl Into<String>, description: impl Into<String>) {
        self.kind = match (self.kind, kind) {
            (Some(InvalidKind::ResourceExhausted), _) | (_, InvalidKind::ResourceExhausted) => {
                Some(InvalidKind::ResourceExhausted)
            }
            (Some(existing), _) => Some(existing),
            (None, new) => Some(new),
        };
        if self.list.len() < MAX_REPORTED {
            self.list.push(FieldViolation {
                field: field.into(),
                description: description.into(),
            });
        }
    }

    /// Records the violations of an earlier refusal.
    pub fn absorb(&mut self, invalid: InvalidRequest) {
        for v in invalid.violations {
            self.add_kind(invalid.kind, v.field, v.description);
        }
    }

    /// Unwraps a result, recording its violations if it failed.
    pub fn take<T>(&mut self, result: Result<T, InvalidRequest>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(invalid) => {
                self.absorb(invalid);
                None
            }
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `Ok(value)` if nothing was recorded, the refusal otherwise.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, InvalidRequest> {
        match self.kind {
            None => Ok(value()),
            Some(kind) => Err(InvalidRequest {
                kind,
                violations: self.list,
            }),
        }
    }
}
