//! Who a request acts as, and what that lets it touch.
//!
//! Every request carries an [`Access`]: the API key's role and bindings, or
//! unrestricted when the server runs without authentication. Its checks are
//! the only place a binding is enforced; they look at the values a request
//! was resolved to (the collection, the tenant), so no request field can
//! widen what a key may touch.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{CollectionName, InvalidRequest, Tenant};

/// What a key may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Get, Count, Scroll, Search, and reading collections' settings.
    Read,
    /// Read, plus Upsert, UpsertStream and Delete.
    Write,
    /// Write, plus creating, deleting and indexing collections, and
    /// managing keys and changing aliases.
    Admin,
}

impl Role {
    /// Parses `read`, `write` or `admin`.
    pub fn parse(role: &str) -> Option<Self> {
        match role {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// The role's name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The public id of an API key (the secret part is never kept).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// How many hex digits an id has.
    pub const DIGITS: usize = 12;

    /// An id as stored; ids are made by the key generator, not by requests.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// An id a request names (`field`): 12 lower-case hex digits. The text
    /// is never echoed, since a whole key pasted by mistake would be.
    pub fn parse(field: &str, id: &str) -> Result<Self, InvalidRequest> {
        if id.len() == Self::DIGITS && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Self(id.to_owned()))
        } else {
            Err(InvalidRequest::field(
                field,
                format!(
                    "a key id is {} lower-case hex digits (the part of the key after `fathom_`, as ListKeys shows \
                     it); this one has {} characters",
                    Self::DIGITS,
                    id.chars().count()
                ),
            ))
        }
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// A key's role and bindings: what every request made with it may touch,
/// and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    /// What the key may do.
    pub role: Role,
    /// The only tenant the key may touch; `None`: any (and collections without tenants).
    pub tenant: Option<String>,
    /// The only collections the key may touch; `None`: any.
    pub collections: Option<BTreeSet<String>>,
    /// When the key stops being accepted; `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
}

impl KeyGrant {
    /// Whether the key is past its expiry at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A time as refusals and listings show it: RFC 3339, UTC, whole seconds.
pub fn show_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The key the request presented; `None` when authentication is off.
    key: Option<KeyId>,
    grant: KeyGrant,
}

/// A request refused because its key may not touch what it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AccessDenied(String);

impl Access {
    /// Access without authentication: everything.
    pub fn unrestricted() -> Self {
        Self {
            key: None,
            grant: KeyGrant {
                role: Role::Admin,
                tenant: None,
                collections: None,
                expires_at: None,
            },
        }
    }

    /// Access through the key `key`, with what it was granted.
    pub fn through_key(key: KeyId, grant: KeyGrant) -> Self {
        Self { key: Some(key), grant }
    }

    /// The key the request presented, if authentication is on.
    pub fn key(&self) -> Option<&KeyId> {
        self.key.as_ref()
    }

    /// The key's role (admin without authentication).
    pub fn role(&self) -> Role {
        self.grant.role
    }

    /// Who, for refusals and the audit log: the key id, or "anonymous".
    pub fn who(&self) -> String {
        match &self.key {
            Some(key) => format!("key {key}"),
            None => "anonymous".to_owned(),
        }
    }

    /// Whether the key's role includes `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.grant.role >= role
    }

    /// Refuses unless the key may touch the collection `name`.
    pub fn check_collection(&self, name: &CollectionName) -> Result<(), AccessDenied> {
        self.check_resolved(name, name)
    }

    /// Refuses unless the key may touch `collection`, which the request
    /// named `named` (the collection's own name, or an alias of it). What
    /// a key may touch are collections: an alias grants nothing by itself,
    /// and switching one never widens a key's reach. The refusal names only
    /// what the request named, so it tells nothing of where an alias points.
    pub fn check_resolved(&self, named: &CollectionName, collection: &CollectionName) -> Result<(), AccessDenied> {
        match &self.grant.collections {
            Some(allowed) if !allowed.contains(collection.as_str()) => Err(AccessDenied(format!(
                "{} is bound to collections {}; it may not touch collection {:?}",
                self.who(),
                list(allowed),
                named.as_str()
            ))),
            _ => Ok(()),
        }
    }

    /// Whether a collection would pass [`Access::check_collection`] (listings
    /// show only those).
    pub fn sees_collection(&self, name: &CollectionName) -> bool {
        self.check_collection(name).is_ok()
    }

    /// Refuses unless the key may touch `tenant` (the tenant a request was
    /// resolved to; empty in collections without tenants).
    pub fn check_tenant(&self, field: &str, tenant: &Tenant) -> Result<(), AccessDenied> {
        match &self.grant.tenant {
            Some(bound) if bound != tenant.as_str() => Err(AccessDenied(format!(
                "{} is bound to tenant {bound:?}; {field} {} is another",
                self.who(),
                if tenant.as_str().is_empty() {
                    "is empty (a collection without tenants)".to_owned()
                } else {
                    format!("{:?}", tenant.as_str())
                },
            ))),
            _ => Ok(()),
        }
    }

    /// Refuses unless a key granted `grant` would be no wider than this
    /// access: no higher role, no other tenant or collection, no later
    /// expiry. The refusal starts with the request field that widens it
    /// (`role`, `tenant`, `collections`, `expire_time`).
    pub fn check_may_grant(&self, grant: &KeyGrant) -> Result<(), AccessDenied> {
        let who = self.who();
        let mine = &self.grant;
        if grant.role > mine.role {
            return Err(AccessDenied(format!(
                "role: {who} has role {}; it may not grant role {}",
                mine.role, grant.role
            )));
        }
        if let Some(bound) = &mine.tenant {
            match &grant.tenant {
                None => {
                    return Err(AccessDenied(format!(
                        "tenant: {who} is bound to tenant {bound:?}; a key it creates must be bound to that tenant \
                         too (set tenant to {bound:?})"
                    )));
                }
                Some(other) if other != bound => {
                    return Err(AccessDenied(format!(
                        "tenant: {who} is bound to tenant {bound:?}; it may not grant tenant {other:?}"
                    )));
                }
                Some(_) => {}
            }
        }
        if let Some(allowed) = &mine.collections {
            match &grant.collections {
                None => {
                    return Err(AccessDenied(format!(
                        "collections: {who} is bound to collections {}; a key it creates must name some of them",
                        list(allowed)
                    )));
                }
                Some(asked) => {
                    if let Some(other) = asked.iter().find(|name| !allowed.contains(*name)) {
                        return Err(AccessDenied(format!(
                            "collections: {who} is bound to collections {}; it may not grant collection {other:?}",
                            list(allowed)
                        )));
                    }
                }
            }
        }
        if let Some(own_expiry) = mine.expires_at
            && grant.expires_at.is_none_or(|asked| asked > own_expiry)
        {
            return Err(AccessDenied(format!(
                "expire_time: {who} expires at {}; a key it creates must expire no later",
                show_time(own_expiry)
            )));
        }
        Ok(())
    }

    /// Whether this access may list and revoke a key granted `grant`: one
    /// it could have created ([`Access::check_may_grant`]).
    pub fn manages(&self, grant: &KeyGrant) -> bool {
        self.check_may_grant(grant).is_ok()
    }

    /// Whether this access manages every key: an admin bound to nothing,
    /// that never expires.
    pub fn manages_every_key(&self) -> bool {
        let KeyGrant {
            role,
            tenant,
            collections,
            expires_at,
        } = &self.grant;
        *role == Role::Admin && tenant.is_none() && collections.is_none() && expires_at.is_none()
    }

    /// Refuses a key bound to a tenant: `what` spans every tenant.
    pub fn check_every_tenant(&self, what: &str) -> Result<(), AccessDenied> {
        match &self.grant.tenant {
            Some(bound) => Err(AccessDenied(format!(
                "{} is bound to tenant {bound:?}; {what} spans every tenant",
                self.who()
            ))),
            None => Ok(()),
        }
    }
}

fn list(names: &BTreeSet<String>) -> String {
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(tenant: Option<&str>, collections: Option<&[&str]>) -> Access {
        Access::through_key(
            KeyId::new("k1"),
            KeyGrant {
                role: Role::Read,
                tenant: tenant.map(str::to_owned),
                collections: collections.map(|c| c.iter().map(|s| s.to_string()).collect()),
                expires_at: None,
            },
        )
    }

    fn tenant(name: &str) -> Tenant {
        Tenant::for_collection("tenant", name, !name.is_empty(), 256).unwrap()
    }

    #[test]
    fn a_tenant_bound_key_touches_its_tenant_only() {
        let access = bound(Some("a"), None);
        assert!(access.check_tenant("tenant", &tenant("a")).is_ok());
        let other = access.check_tenant("tenant", &tenant("b")).unwrap_err();
        assert!(other.to_string().contains("bound to tenant \"a\""), "{other}");
        assert!(access.check_tenant("tenant", &tenant("")).is_err());
        assert!(access.check_every_tenant("stats").is_err());
    }

    #[test]
    fn a_collection_bound_key_touches_its_collections_only() {
        let access = bound(None, Some(&["docs"]));
        let docs = CollectionName::parse("name", "docs").unwrap();
        let other = CollectionName::parse("name", "other").unwrap();
        assert!(access.check_collection(&docs).is_ok());
        assert!(access.check_collection(&other).is_err());
        assert!(access.check_tenant("tenant", &tenant("")).is_ok());
    }

    #[test]
    fn a_narrowed_admin_may_grant_only_what_it_holds_and_names_the_wider_field() {
        let soon = Utc::now() + chrono::TimeDelta::hours(1);
        let admin = Access::through_key(
            KeyId::new("k1"),
            KeyGrant {
                role: Role::Admin,
                tenant: Some("a".into()),
                collections: Some(["x".to_owned(), "y".to_owned()].into()),
                expires_at: Some(soon),
            },
        );
        let within = KeyGrant {
            role: Role::Admin,
            tenant: Some("a".into()),
            collections: Some(["x".to_owned()].into()),
            expires_at: Some(soon),
        };
        assert!(admin.check_may_grant(&within).is_ok());
        let wider = [
            (
                "tenant",
                KeyGrant {
                    tenant: None,
                    ..within.clone()
                },
            ),
            (
                "tenant",
                KeyGrant {
                    tenant: Some("b".into()),
                    ..within.clone()
                },
            ),
            (
                "collections",
                KeyGrant {
                    collections: None,
                    ..within.clone()
                },
            ),
            (
                "collections",
                KeyGrant {
                    collections: Some(["z".to_owned()].into()),
                    ..within.clone()
                },
            ),
            (
                "expire_time",
                KeyGrant {
                    expires_at: None,
                    ..within.clone()
                },
            ),
            (
                "expire_time",
                KeyGrant {
                    expires_at: Some(soon + chrono::TimeDelta::seconds(1)),
                    ..within.clone()
                },
            ),
        ];
        for (field, grant) in wider {
            let refusal = admin.check_may_grant(&grant).unwrap_err().to_string();
            assert!(refusal.starts_with(&format!("{field}: ")), "{refusal}");
            assert!(!admin.manages(&grant));
        }
        assert!(!admin.manages_every_key());
        assert!(Access::unrestricted().manages_every_key());
        assert!(Access::unrestricted().check_may_grant(&within).is_ok());
        let reader = bound(None, None);
        let refusal = reader.check_may_grant(&within).unwrap_err().to_string();
        assert!(refusal.starts_with("role: "), "{refusal}");
    }

    #[test]
    fn an_alias_reaches_only_what_its_collection_would() {
        let access = bound(None, Some(&["docs_v1"]));
        let name = |n| CollectionName::parse("name", n).unwrap();
        assert!(access.check_resolved(&name("docs"), &name("docs_v1")).is_ok());
        let refused = access.check_resolved(&name("docs"), &name("docs_v2")).unwrap_err();
        assert!(refused.to_string().contains("\"docs\""), "{refused}");
        assert!(!refused.to_string().contains("docs_v2"), "{refused}");
        // Bound to an alias's name alone, a key reaches nothing through it.
        let by_alias = bound(None, Some(&["docs"]));
        assert!(by_alias.check_resolved(&name("docs"), &name("docs_v1")).is_err());
    }

    #[test]
    fn roles_include_the_ones_before() {
        assert!(Access::unrestricted().has_role(Role::Admin));
        let read = bound(None, None);
        assert!(read.has_role(Role::Read));
        assert!(!read.has_role(Role::Write));
        assert_eq!(Role::parse("write"), Some(Role::Write));
        assert_eq!(Role::parse("owner"), None);
    }
}
