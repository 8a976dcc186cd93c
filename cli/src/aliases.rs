//! `fathom aliases`: second names of collections, switched atomically.

use fathom_client::{Client, proto};

/// `fathom aliases …`
#[derive(Debug, clap::Subcommand)]
pub enum AliasesCommand {
    /// List aliases and the collections they point at.
    List {
        /// Only the aliases of this collection (its name or an alias of it).
        #[arg(long, short)]
        collection: Option<String>,
    },
    /// Create an alias pointing at a collection.
    ///
    /// Every command that takes a collection (search, import, export,
    /// documents, collections get|stats|delete|build-index) accepts the
    /// alias in its place. The alias takes a collection's naming rules, and
    /// no collection may have its name.
    ///
    ///   fathom aliases create docs docs_v1
    #[command(verbatim_doc_comment)]
    Create {
        /// The new alias: lower-case letters, digits and '_', starting with a letter, at most 48.
        alias: String,
        /// The collection it points at (a collection's own name, not an alias).
        collection: String,
    },
    /// Point an alias at another collection, at once for every client: a
    /// blue-green re-index.
    ///
    ///   fathom collections create docs_v2 --dimension 384
    ///   fathom import --collection docs_v2 docs.jsonl
    ///   fathom aliases switch docs docs_v2
    ///   fathom collections delete docs_v1
    ///
    /// Imports already running through the alias keep writing to the old
    /// collection until they end.
    #[command(verbatim_doc_comment)]
    Switch {
        /// The alias.
        alias: String,
        /// The collection it points at from now on.
        collection: String,
    },
    /// Delete an alias; its collection stays as it is.
    Delete {
        /// The alias.
        alias: String,
    },
}

/// Runs an aliases command.
pub async fn run(client: Client, command: AliasesCommand) -> anyhow::Result<()> {
    let changed = match command {
        AliasesCommand::List { collection } => {
            return print_aliases(&client.list_aliases(collection.as_deref()).await?);
        }
        AliasesCommand::Create { alias, collection } => client.update_aliases().create(alias, collection),
        AliasesCommand::Switch { alias, collection } => client.update_aliases().switch(alias, collection),
        AliasesCommand::Delete { alias } => {
            client.update_aliases().delete(&alias).send().await?;
            outln!("deleted alias {alias}")?;
            return Ok(());
        }
    };
    for alias in changed.send().await? {
        outln!("{} -> {}", alias.alias, alias.collection)?;
    }
    Ok(())
}

fn print_aliases(aliases: &[proto::Alias]) -> anyhow::Result<()> {
    if aliases.is_empty() {
        outln!("(no aliases: create one with `fathom aliases create ALIAS COLLECTION`)")?;
        return Ok(());
    }
    let width = aliases
        .iter()
        .map(|a| a.alias.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    outln!("{:<width$}  collection", "alias")?;
    for alias in aliases {
        outln!("{:<width$}  {}", alias.alias, alias.collection)?;
    }
    Ok(())
}
