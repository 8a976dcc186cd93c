//! The role each RPC needs. An RPC missing from this table needs admin, so
//! a method added later is closed until someone decides otherwise.

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
    }
}
