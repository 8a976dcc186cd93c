//! What a new API key is to grant and what it is for, checked once for
//! every way a key is made (`fathom keys create` and the CreateKey RPC).

use std::collections::BTreeSet;

use chrono::{DateTime, SubsecRound, Utc};

use super::access::show_time;
use super::{CollectionName, InvalidRequest, KeyGrant, Role, Violations};

/// Most characters in a key's description.
pub const MAX_KEY_DESCRIPTION_CHARS: usize = 256;

/// Most collections one key may be bound to.
pub const MAX_KEY_COLLECTIONS: usize = 1000;

/// A key to make: a valid grant and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// What the key may touch, and until when.
    pub grant: KeyGrant,
    /// What the key is for: 1 to [`MAX_KEY_DESCRIPTION_CHARS`] characters,
    /// no control characters.
    pub description: String,
}

/// What a key request asks for, before it is checked.
#[derive(Debug, Clone, Default)]
pub struct KeyRequest<'a> {
    /// The role; `None` when the request named none.
    pub role: Option<Role>,
    /// The tenant to bind the key to, if any.
    pub tenant: Option<&'a str>,
    /// The collections to bind the key to; empty: any.
    pub collections: &'a [String],
    /// What the key is for.
    pub description: &'a str,
    /// When the key is to expire, if ever (kept to the microsecond, as
    /// PostgreSQL stores it).
    pub expires_at: Option<DateTime<Utc>>,
}

impl KeySpec {
    /// Checks `request` with every problem reported at once, each naming its
    /// field (`role`, `tenant`, `collections[i]`, `description`,
    /// `expire_time`): a tenant of 1 to `max_tenant_bytes` bytes without
    /// NUL, valid collection names, a description, and an expiry after `now`.
    pub fn parse(
        request: &KeyRequest<'_>,
        now: DateTime<Utc>,
        max_tenant_bytes: usize,
    ) -> Result<Self, InvalidRequest> {
        let mut violations = Violations::default();
        if request.role.is_none() {
            violations.add("role", "choose a role: read, write or admin");
        }
        if let Some(tenant) = request.tenant {
            if tenant.is_empty() {
                violations.add(
                    "tenant",
                    "an empty tenant binds the key to nothing: name a tenant, or leave tenant unset for any tenant",
                );
            } else if tenant.len() > max_tenant_bytes {
                violations.add(
                    "tenant",
                    format!("tenant is {} bytes; the limit is {max_tenant_bytes}", tenant.len()),
                );
            } else if tenant.contains('\0') {
                violations.add("tenant", "tenant contains a NUL character");
            }
        }
        if request.collections.len() > MAX_KEY_COLLECTIONS {
            violations.add(
                "collections",
                format!(
                    "{} collections; a key may be bound to at most {MAX_KEY_COLLECTIONS}",
                    request.collections.len()
                ),
            );
        }
        let mut collections = BTreeSet::new();
        for (i, name) in request.collections.iter().enumerate().take(MAX_KEY_COLLECTIONS) {
            if let Some(name) = violations.take(CollectionName::parse(&format!("collections[{i}]"), name)) {
                collections.insert(name.as_str().to_owned());
            }
        }
        let description = request.description;
        let characters = description.chars().count();
        if description.trim().is_empty() {
            violations.add(
                "description",
                format!("say what the key is for (1 to {MAX_KEY_DESCRIPTION_CHARS} characters)"),
            );
        } else if characters > MAX_KEY_DESCRIPTION_CHARS {
            violations.add(
                "description",
                format!("description is {characters} characters; the limit is {MAX_KEY_DESCRIPTION_CHARS}"),
            );
        } else if description.chars().any(char::is_control) {
            violations.add(
                "description",
                "description contains a control character (such as a newline or NUL)",
            );
        }
        if let Some(at) = request.expires_at
            && at <= now
        {
            violations.add(
                "expire_time",
                format!(
                    "{} is not in the future (the server's clock reads {}): a key must expire later than it is made",
                    show_time(at),
                    show_time(now)
                ),
            );
        }
        violations.finish(|| Self {
            grant: KeyGrant {
                role: request.role.expect("a role when nothing was refused"),
                tenant: request.tenant.map(str::to_owned),
                collections: (!collections.is_empty()).then_some(collections),
                expires_at: request.expires_at.map(|at| at.trunc_subsecs(6)),
            },
            description: description.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn fields(request: &KeyRequest<'_>) -> Vec<String> {
        KeySpec::parse(request, Utc::now(), 256)
            .unwrap_err()
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn a_valid_request_becomes_its_grant() {
        let collections = ["b".to_owned(), "a".to_owned(), "a".to_owned()];
        let expires_at = Utc::now() + TimeDelta::days(1);
        let spec = KeySpec::parse(
            &KeyRequest {
                role: Some(Role::Write),
                tenant: Some("acme"),
                collections: &collections,
                description: "ingest",
                expires_at: Some(expires_at),
            },
            Utc::now(),
            256,
        )
        .unwrap();
        assert_eq!(spec.grant.role, Role::Write);
        assert_eq!(spec.grant.tenant.as_deref(), Some("acme"));
        assert_eq!(
            spec.grant.collections.unwrap().into_iter().collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            spec.grant.expires_at,
            Some(expires_at.trunc_subsecs(6)),
            "to the microsecond, as stored"
        );
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let collections = ["ok".to_owned(), "Not Valid".to_owned()];
        let long = "x".repeat(300);
        let bad = KeyRequest {
            role: None,
            tenant: Some(""),
            collections: &collections,
            description: " ",
            expires_at: Some(Utc::now() - TimeDelta::seconds(1)),
        };
        assert_eq!(
            fields(&bad),
            ["role", "tenant", "collections[1]", "description", "expire_time"]
        );
        let oversized = KeyRequest {
            role: Some(Role::Read),
            tenant: Some(&long),
            description: &long,
            ..Default::default()
        };
        assert_eq!(fields(&oversized), ["tenant", "description"]);
        let control = KeyRequest {
            role: Some(Role::Read),
            description: "two\nlines",
            ..Default::default()
        };
        assert_eq!(fields(&control), ["description"]);
    }
}
