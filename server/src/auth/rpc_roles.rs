//! The role each RPC needs. An RPC missing from this table needs admin, so
//! a method added later is closed until someone decides otherwise (and a
//! test fails until it is listed).

use crate::domain::Role;
use crate::transport::is_infrastructure;

const READ: [&str; 8] = [
    "/fathom.v1.Collections/GetCollection",
    "/fathom.v1.Collections/ListCollections",
    "/fathom.v1.Collections/ListAliases",
    "/fathom.v1.Collections/GetCollectionStats",
    "/fathom.v1.Documents/Get",
    "/fathom.v1.Documents/Count",
    "/fathom.v1.Documents/Scroll",
    "/fathom.v1.Search/Search",
];

const WRITE: [&str; 4] = [
    "/fathom.v1.Documents/Upsert",
    "/fathom.v1.Documents/UpsertStream",
    "/fathom.v1.Documents/Delete",
    "/fathom.v1.Documents/Update",
];

/// Admin RPCs, listed so that every RPC's role is a decision (a test
/// checks that each RPC is in one table); any RPC not listed needs admin too.
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "admin is the default; the list is checked by a test")
)]
const ADMIN: [&str; 7] = [
    "/fathom.v1.Collections/CreateCollection",
    "/fathom.v1.Collections/DeleteCollection",
    "/fathom.v1.Collections/BuildIndex",
    // Switching an alias redirects every reader, as creating and deleting
    // collections do.
    "/fathom.v1.Collections/UpdateAliases",
    // Key management: an admin key bound to a tenant or collections, or
    // expiring, manages only keys within its own grant (api::keys).
    "/fathom.v1.Keys/CreateKey",
    "/fathom.v1.Keys/ListKeys",
    "/fathom.v1.Keys/RevokeKey",
];

/// The role the RPC at `path` needs; `None` for health and reflection,
/// which anyone may call, with or without a key.
pub fn required_role(path: &str) -> Option<Role> {
    // Probes and tools must reach them, and neither tells anything about the
    // data: health answers for the database, reflection describes the public
    // contract.
    if is_infrastructure(path) {
        None
    } else if READ.contains(&path) {
        Some(Role::Read)
    } else if WRITE.contains(&path) {
        Some(Role::Write)
    } else {
        // ADMIN, and whatever is not listed.
        Some(Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_collection_changes_need_their_roles() {
        assert_eq!(required_role("/grpc.health.v1.Health/Check"), None);
        assert_eq!(required_role("/fathom.v1.Search/Search"), Some(Role::Read));
        assert_eq!(required_role("/fathom.v1.Documents/UpsertStream"), Some(Role::Write));
        assert_eq!(
            required_role("/fathom.v1.Collections/DeleteCollection"),
            Some(Role::Admin)
        );
        assert_eq!(required_role("/fathom.v1.Collections/SomethingNew"), Some(Role::Admin));
        assert_eq!(required_role("/fathom.v1.Collections/ListAliases"), Some(Role::Read));
        // Switching an alias redirects every reader, as creating and
        // deleting collections do: admin, like them.
        assert_eq!(required_role("/fathom.v1.Collections/UpdateAliases"), Some(Role::Admin));
        assert_eq!(required_role("/fathom.v1.Keys/ListKeys"), Some(Role::Admin));
    }

    #[test]
    fn every_fathom_rpc_is_listed_with_its_role_exactly_once() {
        let methods = crate::transport::rpc_methods::rpc_methods(&[fathom_api::FILE_DESCRIPTOR_SET]).unwrap();
        for path in methods.iter().map(|m| m.path()) {
            let listed = [&READ[..], &WRITE[..], &ADMIN[..]]
                .iter()
                .filter(|table| table.contains(&path.as_str()))
                .count();
            assert_eq!(
                listed, 1,
                "{path} must be listed in exactly one of READ, WRITE and ADMIN"
            );
        }
        assert_eq!(
            methods.len(),
            READ.len() + WRITE.len() + ADMIN.len(),
            "no stale entries"
        );
    }
}
