//! Authentication by API key, and the role each RPC needs.
//!
//! Keys live hashed in PostgreSQL ([`crate::store::ApiKeyRecord`]), made
//! by [`issue_key`] alone; each server keeps the unrevoked ones in a
//! `KeyRing` refreshed from the database (expiry is checked against the
//! clock at every request), and the `AuthLayer` tower layer resolves every
//! request's key to an [`Access`](crate::domain::Access) before a handler
//! runs. Handlers
//! enforce a key's tenant and collection bindings through that `Access`.

mod api_key;
mod key_ring;
mod layer;
mod rpc_roles;

pub use api_key::{GeneratedKey, IssueKeyError, IssuedKey, id_of, issue_key};
pub(crate) use key_ring::{DEFAULT_KEY_REFRESH, KeyRing};
pub(crate) use layer::AuthLayer;
