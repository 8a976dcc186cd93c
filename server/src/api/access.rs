//! The access a request was granted, as the auth layer left it; the
//! collection and tenant a request may touch under it; and the audit log of
//! what keys changed.

use std::sync::Arc;

use tonic::{Request, Status};

use super::error::ApiError;
use crate::domain::{Access, Collection, CollectionName, Limits, Tenant};
use crate::store::{Store, StoreError};

/// The access the auth layer resolved for `request`. A request without one
/// is refused: access is never assumed.
pub(super) fn access_of<T>(request: &Request<T>) -> Result<Access, Status> {
    request.extensions().get::<Access>().cloned().ok_or_else(|| {
        tracing::error!("a request reached a handler without an access check");
        Status::permission_denied("this request was not checked for access; it is refused")
    })
}

/// Records a write or a collection change in the audit log (target
/// `fathom::audit`): who, what, on which collection and tenant, with what
/// effect. The time is the log line's.
pub(super) fn audit(access: &Access, action: &str, collection: &CollectionName, tenant: Option<&Tenant>, effect: &str) {
    tracing::info!(
        target: "fathom::audit",
        key = %access.who(),
        role = %access.role(),
        action,
        collection = %collection,
        tenant = tenant.map(Tenant::as_str).unwrap_or(""),
        effect,
        "audit"
    );
}

/// The collection a request names in `field`, by its own name or by an
/// alias, once `access` may touch it. The check is on the collection the
/// name resolves to, so an alias never reaches beyond a key's collections.
/// A name that does not exist is refused like a collection the key may not
/// touch unless the key may touch that name, so a bound key cannot tell
/// which names exist outside its collections.
pub(super) async fn resolve(
    store: &Store,
    access: &Access,
    field: &str,
    name: &str,
) -> Result<Arc<Collection>, ApiError> {
    let name = CollectionName::parse(field, name)?;
    match store.collection(&name).await {
        Ok(collection) => {
            access.check_resolved(&name, &collection.spec.name)?;
            Ok(collection)
        }
        Err(missing @ StoreError::CollectionNotFound(_)) => {
            access.check_collection(&name)?;
            Err(missing.into())
        }
        Err(error) => Err(error.into()),
    }
}

/// The collection (see [`resolve`]) and tenant a request names, once
/// `access` may touch them.
pub(super) async fn scope(
    store: &Store,
    limits: &Limits,
    access: &Access,
    collection: &str,
    tenant: &str,
    field_prefix: &str,
) -> Result<(Arc<Collection>, Tenant), ApiError> {
    let collection = resolve(store, access, &format!("{field_prefix}collection"), collection).await?;
    let tenant_field = format!("{field_prefix}tenant");
    let tenant = Tenant::for_collection(
        &tenant_field,
        tenant,
        collection.spec.multi_tenant,
        limits.max_tenant_bytes,
    )?;
    access.check_tenant(&tenant_field, &tenant)?;
    Ok((collection, tenant))
}
