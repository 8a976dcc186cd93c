//! Aliases: second names of collections, switched atomically.

use fathom_api::v1 as pb;
use pb::alias_action::Action;

use crate::{Client, Error};

/// An UpdateAliases being built: alias changes applied in order, in one
/// transaction, all or none. Nothing is sent until [`UpdateAliases::send`].
///
/// A blue-green re-index: fill `docs_v2`, then point the alias clients use at it.
///
/// ```no_run
/// # async fn example(client: fathom_client::Client) -> Result<(), fathom_client::Error> {
/// client.update_aliases().create("docs", "docs_v1").send().await?;
/// // ... later, once docs_v2 holds the re-indexed documents:
/// client.update_aliases().switch("docs", "docs_v2").send().await?;
/// client.delete_collection("docs_v1").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "nothing is sent until .send()"]
pub struct UpdateAliases {
    client: Client,
    actions: Vec<pb::AliasAction>,
}

impl UpdateAliases {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            actions: Vec::new(),
        }
    }

    fn push(mut self, action: Action) -> Self {
        self.actions.push(pb::AliasAction { action: Some(action) });
        self
    }

    /// Creates `alias`, pointing at `collection` (a collection's own name).
    pub fn create(self, alias: impl Into<String>, collection: impl Into<String>) -> Self {
        self.push(Action::CreateAlias(pb::CreateAlias {
            alias: alias.into(),
            collection: collection.into(),
        }))
    }

    /// Points the existing `alias` at `collection`.
    pub fn switch(self, alias: impl Into<String>, collection: impl Into<String>) -> Self {
        self.push(Action::SwitchAlias(pb::SwitchAlias {
            alias: alias.into(),
            collection: collection.into(),
        }))
    }

    /// Deletes `alias` (its collection stays).
    pub fn delete(self, alias: impl Into<String>) -> Self {
        self.push(Action::DeleteAlias(pb::DeleteAlias { alias: alias.into() }))
    }

    /// Applies the changes; the aliases they name that exist afterwards, by
    /// name. Not retried: a retry after a lost answer would be refused
    /// (ALREADY_EXISTS, NOT_FOUND) for changes that were made.
    pub async fn send(self) -> Result<Vec<pb::Alias>, Error> {
        let request = self.client.request(pb::UpdateAliasesRequest { actions: self.actions });
        let response = self
            .client
            .collections_stub()
            .update_aliases(request)
            .await?
            .into_inner();
        self.client.session.observe(&response.consistency_token);
        Ok(response.aliases)
    }
}
