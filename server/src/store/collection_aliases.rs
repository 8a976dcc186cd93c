//! Aliases: `fathom.collection_aliases` rows, each a second name of one
//! collection.
//!
//! Alias and collection names share one namespace. Whatever claims a name
//! (creating a collection or an alias) first takes a transaction-scoped
//! advisory lock on it ([`claim_name`]), then looks for the other kind under
//! that name, so two servers can never give one name to both.
//!
//! Resolving a name to its collection is [`Store::collection`]'s job, which
//! reads the alias in the same statement as the catalog row.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, Transaction};
use tracing::Instrument;

use super::commit_tokens::Committed;
use super::error::NameHolder;
use super::sql_spans::sql;
use super::{Store, StoreError};
use crate::domain::{AccessDenied, Alias, AliasAction, AliasActions, AliasChange, CollectionName, Deadline};

/// First key of the advisory locks on names (the second is the name's
/// hash): distinct from the other advisory locks fathom takes.
const NAME_LOCK_CLASS: i32 = 0x6e61_6d65; // "name"

#[derive(sqlx::FromRow)]
struct AliasRow {
    alias: String,
    collection: String,
    updated_at: DateTime<Utc>,
}

impl AliasRow {
    fn into_alias(self) -> Result<Alias, StoreError> {
        let corrupt = || StoreError::Corrupt(format!("alias row {:?} holds an invalid name", self.alias));
        Ok(Alias {
            alias: CollectionName::parse("alias", &self.alias).map_err(|_| corrupt())?,
            collection: CollectionName::parse("collection", &self.collection).map_err(|_| corrupt())?,
            updated_at: self.updated_at,
        })
    }
}

/// Takes the name's lock until the transaction ends, then refuses it if an
/// alias has it: what a new collection must do before its catalog row is
/// inserted (a collection of that name is refused by the catalog's key).
pub(super) async fn claim_name(conn: &mut PgConnection, name: &CollectionName) -> Result<(), StoreError> {
    lock_name(conn, name).await?;
    if alias_target(conn, name, false).await?.is_some() {
        return Err(StoreError::NameTaken {
            field: "name".to_owned(),
            name: name.clone(),
            by: NameHolder::Alias,
        });
    }
    Ok(())
}

async fn lock_name(conn: &mut PgConnection, name: &CollectionName) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(NAME_LOCK_CLASS)
        .bind(name.as_str())
        .execute(conn)
        .instrument(sql("SELECT", "lock name"))
        .await?;
    Ok(())
}

/// The collection the alias points at, if the alias exists; `for_update`
/// locks its row against other changes until the transaction ends.
async fn alias_target(
    conn: &mut PgConnection,
    alias: &CollectionName,
    for_update: bool,
) -> Result<Option<String>, StoreError> {
    let statement = if for_update {
        "SELECT collection FROM fathom.collection_aliases WHERE alias = $1 FOR UPDATE"
    } else {
        "SELECT collection FROM fathom.collection_aliases WHERE alias = $1"
    };
    Ok(sqlx::query_scalar(statement)
        .bind(alias.as_str())
        .fetch_optional(conn)
        .instrument(sql("SELECT", "alias target"))
        .await?)
}

/// Whether a collection of that name exists; if so, its row is locked
/// against a drop until the transaction ends.
async fn collection_exists(conn: &mut PgConnection, name: &CollectionName) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM fathom.collections WHERE name = $1 FOR KEY SHARE")
        .bind(name.as_str())
        .fetch_optional(conn)
        .instrument(sql("SELECT", "collection exists"))
        .await?;
    Ok(found.is_some())
}

/// Refuses the action unless `collection`, named by `field`, exists and may be touched.
async fn check_target(
    conn: &mut PgConnection,
    field: String,
    collection: &CollectionName,
    may_touch: &(dyn Fn(&CollectionName) -> Result<(), AccessDenied> + Sync),
) -> Result<(), StoreError> {
    may_touch(collection).map_err(|denied| StoreError::AliasDenied {
        field: field.clone(),
        denied,
    })?;
    if !collection_exists(conn, collection).await? {
        let is_alias = alias_target(conn, collection, false).await?.is_some();
        return Err(StoreError::AliasTargetNotFound {
            field,
            collection: collection.clone(),
            is_alias,
        });
    }
    Ok(())
}

/// Applies one action within the transaction.
async fn apply(
    conn: &mut PgConnection,
    action: &AliasAction,
    may_touch: &(dyn Fn(&CollectionName) -> Result<(), AccessDenied> + Sync),
) -> Result<(), StoreError> {
    let alias = action.change.alias();
    if let AliasChange::Create { collection, .. } = &action.change {
        check_target(conn, action.collection_field(), collection, may_touch).await?;
        if collection_exists(conn, alias).await? {
            return Err(StoreError::NameTaken {
                field: action.alias_field(),
                name: alias.clone(),
                by: NameHolder::Collection,
            });
        }
        let inserted = sqlx::query(
            "INSERT INTO fathom.collection_aliases (alias, collection) VALUES ($1, $2) ON CONFLICT (alias) DO NOTHING",
        )
        .bind(alias.as_str())
        .bind(collection.as_str())
        .execute(&mut *conn)
        .instrument(sql("INSERT", "create alias"))
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::NameTaken {
                field: action.alias_field(),
                name: alias.clone(),
                by: NameHolder::Alias,
            });
        }
        return Ok(());
    }
    let Some(current) = alias_target(conn, alias, true).await? else {
        return Err(StoreError::AliasNotFound {
            field: action.alias_field(),
            alias: alias.clone(),
        });
    };
    // A key may move an alias away from a collection only if it may touch
    // that collection: otherwise it could take the alias others read from.
    let current = CollectionName::parse("collection", &current)
        .map_err(|_| StoreError::Corrupt(format!("alias {:?} points at an invalid name", alias.as_str())))?;
    may_touch(&current).map_err(|denied| StoreError::AliasDenied {
        field: action.alias_field(),
        denied,
    })?;
    match &action.change {
        AliasChange::Switch { collection, .. } => {
            check_target(conn, action.collection_field(), collection, may_touch).await?;
            sqlx::query("UPDATE fathom.collection_aliases SET collection = $2, updated_at = now() WHERE alias = $1")
                .bind(alias.as_str())
                .bind(collection.as_str())
                .execute(&mut *conn)
                .instrument(sql("UPDATE", "switch alias"))
                .await?;
        }
        AliasChange::Delete { .. } => {
            sqlx::query("DELETE FROM fathom.collection_aliases WHERE alias = $1")
                .bind(alias.as_str())
                .execute(&mut *conn)
                .instrument(sql("DELETE", "delete alias"))
                .await?;
        }
        AliasChange::Create { .. } => unreachable!("handled above"),
    }
    Ok(())
}

impl Store {
    /// Applies the actions in order, in one transaction bounded by
    /// `deadline` (see [`Store::write_within`]): all of them, or none if one
    /// fails. `may_touch` refuses collections the caller may not touch;
    /// it is asked about every collection an action points an alias at or
    /// moves one away from. Returns the aliases the actions name that exist
    /// afterwards, by name.
    pub async fn update_aliases(
        &self,
        actions: &AliasActions,
        may_touch: &(dyn Fn(&CollectionName) -> Result<(), AccessDenied> + Sync),
        deadline: Deadline,
    ) -> Result<Committed<Vec<Alias>>, StoreError> {
        let names = actions.aliases();
        self.write_within(deadline, async |mut tx: Transaction<'_, Postgres>| {
            // In one order, so two requests on the same names cannot deadlock.
            for name in &names {
                lock_name(&mut tx, name).await?;
            }
            for action in actions.iter() {
                apply(&mut tx, action, may_touch).await?;
            }
            let rows: Vec<AliasRow> = sqlx::query_as(
                "SELECT alias, collection, updated_at FROM fathom.collection_aliases \
                 WHERE alias = ANY($1) ORDER BY alias",
            )
            .bind(names.iter().map(|n| n.as_str()).collect::<Vec<_>>())
            .fetch_all(&mut *tx)
            .instrument(sql("SELECT", "updated aliases"))
            .await?;
            tx.commit().instrument(sql("COMMIT", "update aliases")).await?;
            rows.into_iter().map(AliasRow::into_alias).collect()
        })
        .await
    }

    /// Every alias, by name; with `collection`, only those pointing at it.
    pub async fn list_aliases(&self, collection: Option<&CollectionName>) -> Result<Vec<Alias>, StoreError> {
        let rows: Vec<AliasRow> = sqlx::query_as(
            "SELECT alias, collection, updated_at FROM fathom.collection_aliases \
             WHERE $1::text IS NULL OR collection = $1 ORDER BY alias",
        )
        .bind(collection.map(CollectionName::as_str))
        .fetch_all(self.reachable_pool()?)
        .instrument(sql("SELECT", "list aliases"))
        .await
        .map_err(|e| self.error(e))?;
        rows.into_iter().map(AliasRow::into_alias).collect()
    }
}
