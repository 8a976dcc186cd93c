//! Who a request acts as, and what that lets it touch.
//!
//! Every request carries an [`Access`]: the API key's role and bindings, or
//! unrestricted when the server runs without authentication. Its checks are
//! the only place a binding is enforced; they look at the values a request
//! was resolved to (the collection, the tenant), so no request field can
//! widen what a key may touch.

use std::collections::BTreeSet;
use std::fmt;

use super::{CollectionName, Tenant};

/// What a key may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Get, Count, Scroll, Search, and reading collections' settings.
    Read,
    /// Read, plus Upsert, UpsertStream and Delete.
    Write,
    /// Write, plus creating, deleting and indexing collections, and
    /// changing aliases.
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
    /// An id as stored; ids are made by the key generator, not by requests.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
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

/// A key's role and bindings: what every request made with it may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    /// What the key may do.
    pub role: Role,
    /// The only tenant the key may touch; `None`: any (and collections without tenants).
    pub tenant: Option<String>,
    /// The only collections the key may touch; `None`: any.
    pub collections: Option<BTreeSet<String>>,
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
