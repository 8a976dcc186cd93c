//! The update builder: partial changes of stored documents.

use fathom_api::v1 as pb;

use crate::retry::idempotent;
use crate::{Client, Error, Filter, json_to_struct};

/// An Update being built: what changes in every document `filter` chooses.
/// Nothing is sent until [`UpdateBuilder::send`].
///
/// ```no_run
/// # async fn example(client: fathom_client::Client) -> Result<(), fathom_client::Error> {
/// use fathom_client::Filter;
/// let changed = client
///     .update("docs", "", Filter::ids(["doc-1", "doc-2"]))
///     .set_metadata(serde_json::json!({"reviewed": true}))?
///     .delete_metadata_keys(["draft"])
///     .send()
///     .await?;
/// println!("{changed} documents changed");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct UpdateBuilder {
    client: Client,
    request: pb::UpdateRequest,
}

impl UpdateBuilder {
    pub(crate) fn new(client: Client, collection: &str, tenant: &str, filter: Filter) -> Self {
        let filter = filter.into_proto();
        // An ids-only filter is sent as the ids selector: the same documents.
        let selector = match filter.node {
            Some(pb::filter::Node::Ids(ids)) => pb::update_request::Selector::Ids(ids),
            node => pb::update_request::Selector::Filter(pb::Filter { node }),
        };
        Self {
            client,
            request: pb::UpdateRequest {
                collection: collection.into(),
                tenant: tenant.into(),
                selector: Some(selector),
                ..Default::default()
            },
        }
    }

    /// Replaces the text (re-indexed for keyword search).
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.request.text = Some(text.into());
        self
    }

    /// Sets these top-level metadata keys, keeping the others. Fails if
    /// `metadata` is not a JSON object.
    pub fn set_metadata(mut self, metadata: serde_json::Value) -> Result<Self, Error> {
        self.request.set_metadata = Some(json_to_struct(metadata)?);
        self.request.replace_metadata = false;
        Ok(self)
    }

    /// Replaces the whole metadata object (`{}` clears it). Fails if
    /// `metadata` is not a JSON object.
    pub fn replace_metadata(mut self, metadata: serde_json::Value) -> Result<Self, Error> {
        self.request.set_metadata = Some(json_to_struct(metadata)?);
        self.request.replace_metadata = true;
        Ok(self)
    }

    /// Removes these top-level metadata keys where present.
    pub fn delete_metadata_keys<I: IntoIterator<Item = S>, S: Into<String>>(mut self, keys: I) -> Self {
        self.request
            .delete_metadata_keys
            .extend(keys.into_iter().map(Into::into));
        self
    }

    /// Sends the update, in one transaction; returns how many documents
    /// changed (ids that do not exist are skipped, never created). Retried
    /// as the retry table says: applying it twice changes nothing more.
    pub async fn send(self) -> Result<u64, Error> {
        let UpdateBuilder { client, request } = self;
        idempotent(client.retry, || async {
            let request = client.request(request.clone());
            let response = client.documents_stub().update(request).await?.into_inner();
            client.session.observe(&response.consistency_token);
            Ok(response.updated)
        })
        .await
    }
}
