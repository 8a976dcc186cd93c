//! `fathom documents`: read, count, change and delete documents by id or filter.

use fathom_client::{Client, Filter};

use super::jsonl::Record;
use super::wording::count;

/// `fathom documents …`
#[derive(Debug, clap::Subcommand)]
pub enum DocumentsCommand {
    /// Print documents by id, as JSON Lines (the format of `fathom export`);
    /// ids that do not exist are skipped.
    Get {
        /// The collection and tenant.
        #[command(flatten)]
        target: Target,
        /// The ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Print how many documents match a filter (all, without one).
    Count {
        /// The collection and tenant.
        #[command(flatten)]
        target: Target,
        /// Only documents matching this filter, in MongoDB-style JSON:
        /// '{"year": {"$gte": 2020}}'.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Delete documents by id or by filter, in one transaction; prints how many went.
    Delete {
        /// The collection and tenant.
        #[command(flatten)]
        target: Target,
        /// The documents.
        #[command(flatten)]
        chosen: Chosen,
    },
    /// Change the text or metadata of documents by id or by filter, without
    /// resending their vectors, in one transaction; prints how many changed.
    ///
    ///   fathom documents update -c docs --ids a,b --set-metadata '{"reviewed": true}'
    ///   fathom documents update -c docs --filter '{"draft": true}' --delete-key draft
    ///   fathom documents update -c docs --ids a --text "corrected text"
    #[command(verbatim_doc_comment)]
    Update {
        /// The collection and tenant.
        #[command(flatten)]
        target: Target,
        /// The documents.
        #[command(flatten)]
        chosen: Chosen,
        /// The new text (re-indexed for keyword search).
        #[arg(long)]
        text: Option<String>,
        /// A JSON object whose top-level keys are set; the others are kept.
        #[arg(long)]
        set_metadata: Option<String>,
        /// With --set-metadata: replace the whole metadata object instead
        /// ('{}' clears it).
        #[arg(long, requires = "set_metadata")]
        replace_metadata: bool,
        /// A top-level metadata key to remove (repeatable).
        #[arg(long = "delete-key", value_name = "KEY", conflicts_with = "replace_metadata")]
        delete_keys: Vec<String>,
    },
}

/// The collection (and tenant) a documents command acts on.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The collection.
    #[arg(long, short)]
    collection: String,
    /// The tenant (multi-tenant collections).
    #[arg(long, default_value = "")]
    tenant: String,
}

/// Which documents a delete or an update acts on: exactly one of the two.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Chosen {
    /// These ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    ids: Vec<String>,
    /// Every document matching this filter, in MongoDB-style JSON.
    #[arg(long)]
    filter: Option<String>,
}

impl Chosen {
    fn filter(&self) -> anyhow::Result<Filter> {
        match &self.filter {
            Some(json) => super::parse_filter(json),
            None => Ok(Filter::ids(self.ids.iter().cloned())),
        }
    }
}

/// Runs a documents command.
pub async fn run(client: Client, command: DocumentsCommand) -> anyhow::Result<()> {
    match command {
        DocumentsCommand::Get { target, ids } => {
            for document in client.get(&target.collection, &target.tenant, &ids).await? {
                outln!("{}", serde_json::to_string(&Record::from_document(document))?)?;
            }
        }
        DocumentsCommand::Count { target, filter } => {
            let filter = filter.as_deref().map(super::parse_filter).transpose()?;
            outln!("{}", client.count(&target.collection, &target.tenant, filter).await?)?;
        }
        DocumentsCommand::Delete { target, chosen } => {
            let deleted = client
                .delete(&target.collection, &target.tenant, chosen.filter()?)
                .await?;
            outln!("deleted {}", count(deleted, "document", "documents"))?;
        }
        DocumentsCommand::Update {
            target,
            chosen,
            text,
            set_metadata,
            replace_metadata,
            delete_keys,
        } => {
            let mut update = client.update(&target.collection, &target.tenant, chosen.filter()?);
            if let Some(text) = text {
                update = update.text(text);
            }
            if let Some(json) = set_metadata {
                let object: serde_json::Value = serde_json::from_str(&json)
                    .map_err(|e| anyhow::anyhow!("--set-metadata is not valid JSON: {e}"))?;
                update = if replace_metadata {
                    update.replace_metadata(object)?
                } else {
                    update.set_metadata(object)?
                };
            }
            let updated = update.delete_metadata_keys(delete_keys).send().await?;
            outln!("updated {}", count(updated, "document", "documents"))?;
        }
    }
    Ok(())
}
