//! `fathom keys`: API keys, managed in the database every server reads.

use std::collections::BTreeSet;

use fathom_server::auth::GeneratedKey;
use fathom_server::domain::{CollectionName, KeyGrant, KeyId, Limits, Role};
use fathom_server::store::{ApiKeyRecord, NewApiKey, Store};

use crate::database::DatabaseArgs;

/// `fathom keys …`
#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    /// The database fathom serves from.
    #[command(flatten)]
    database: DatabaseArgs,
    /// What to do.
    #[command(subcommand)]
    command: KeysCommand,
}

/// The key subcommands.
#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Create a key and print it (on stdout, alone, once: only its hash is
    /// kept). Every server using this database accepts it within a second.
    ///
    ///   KEY=$(fathom keys create --role write --tenant acme --description "acme ingest")
    #[command(verbatim_doc_comment)]
    Create {
        /// read: get, count, scroll, search, collection settings, list aliases;
        /// write: also upsert and delete; admin: also create, delete and index
        /// collections, and change aliases.
        #[arg(long, value_parser = ["read", "write", "admin"])]
        role: String,
        /// Bind the key to this tenant: it can touch no other tenant's
        /// documents, nor collections without tenants, whatever a request says.
        #[arg(long)]
        tenant: Option<String>,
        /// Bind the key to this collection (repeat for several): it can touch no other,
        /// through an alias or otherwise (name collections, not aliases, here).
        #[arg(long = "collection", value_name = "NAME")]
        collections: Vec<String>,
        /// What the key is for (shown by `fathom keys list`).
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List keys (ids, roles, bindings; never the keys themselves).
    List,
    /// Revoke a key by its id: every server refuses it within a second.
    /// Rotate by creating the new key first, moving clients, then revoking the old.
    Revoke {
        /// The key's id (the 12 hex digits after `fathom_`, as `fathom keys list` shows).
        id: String,
    },
}

/// Runs a `fathom keys` command.
pub async fn keys(args: KeysArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.database.running_url()?, 1).await?;
    store.migrate().await?;
    let outcome = match args.command {
        KeysCommand::Create {
            role,
            tenant,
            collections,
            description,
        } => create(&store, &role, tenant, collections, description).await,
        KeysCommand::List => list(&store).await,
        KeysCommand::Revoke { id } => revoke(&store, &id).await,
    };
    store.close().await;
    outcome
}

async fn create(
    store: &Store,
    role: &str,
    tenant: Option<String>,
    collections: Vec<String>,
    description: String,
) -> anyhow::Result<()> {
    let role = Role::parse(role).ok_or_else(|| anyhow::anyhow!("--role must be read, write or admin"))?;
    let max_tenant = Limits::default().max_tenant_bytes;
    if let Some(tenant) = &tenant
        && (tenant.is_empty() || tenant.len() > max_tenant || tenant.contains('\0'))
    {
        anyhow::bail!("--tenant must be 1 to {max_tenant} bytes without NUL characters");
    }
    let mut bound = BTreeSet::new();
    for name in &collections {
        let name = CollectionName::parse("--collection", name).map_err(|e| anyhow::anyhow!("--collection: {e}"))?;
        bound.insert(name.to_string());
    }
    let key = GeneratedKey::generate().map_err(|e| anyhow::anyhow!("cannot read random bytes: {e}"))?;
    let stored = store
        .create_api_key(&NewApiKey {
            id: key.id.clone(),
            secret_sha256: key.secret_sha256,
            grant: KeyGrant {
                role,
                tenant,
                collections: (!bound.is_empty()).then_some(bound),
            },
            description,
        })
        .await?;
    outln!("{}", key.text)?;
    eprintln!(
        "created key {} ({}); it is shown only now, so store it safely. Clients send it as `authorization: Bearer \
         <key>` (FATHOM_API_KEY for the CLI and SDKs).",
        stored.id,
        grant_summary(&stored)
    );
    Ok(())
}

async fn list(store: &Store) -> anyhow::Result<()> {
    let keys = store.list_api_keys().await?;
    if keys.is_empty() {
        eprintln!("no keys: create one with `fathom keys create --role admin`");
        return Ok(());
    }
    outln!(
        "{:<12}  {:<6}  {:<16}  {:<24}  {:<20}  {:<20}  DESCRIPTION",
        "ID",
        "ROLE",
        "TENANT",
        "COLLECTIONS",
        "CREATED",
        "REVOKED"
    )?;
    for key in &keys {
        outln!(
            "{:<12}  {:<6}  {:<16}  {:<24}  {:<20}  {:<20}  {}",
            key.id,
            key.grant.role,
            key.grant.tenant.as_deref().unwrap_or("*"),
            key.grant
                .collections
                .as_ref()
                .map_or("*".to_owned(), |c| c.iter().cloned().collect::<Vec<_>>().join(",")),
            key.created_at.format("%Y-%m-%d %H:%M:%S"),
            key.revoked_at
                .map_or("-".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
            key.description
        )?;
    }
    Ok(())
}

async fn revoke(store: &Store, id: &str) -> anyhow::Result<()> {
    // The whole key pasted by mistake still names its id; the secret is not echoed.
    let id = fathom_server::auth::id_of(id).unwrap_or(id);
    match store.revoke_api_key(&KeyId::new(id)).await? {
        Some(key) => {
            eprintln!(
                "revoked key {} ({}); servers refuse it within a second",
                key.id,
                grant_summary(&key)
            );
            Ok(())
        }
        None => anyhow::bail!("no key has id {id:?}: `fathom keys list` shows the ids"),
    }
}

fn grant_summary(key: &ApiKeyRecord) -> String {
    let mut summary = format!("role {}", key.grant.role);
    if let Some(tenant) = &key.grant.tenant {
        summary.push_str(&format!(", tenant {tenant:?}"));
    }
    if let Some(collections) = &key.grant.collections {
        summary.push_str(&format!(
            ", collections {}",
            collections.iter().cloned().collect::<Vec<_>>().join(",")
        ));
    }
    summary
}
