//! `fathom keys`: API keys, managed in the database every server reads.

use chrono::{DateTime, TimeDelta, Utc};
use fathom_server::auth::issue_key;
use fathom_server::domain::{KeyId, KeyRequest, KeySpec, Limits, Role, show_time};
use fathom_server::store::{ApiKeyRecord, KeyState, Store};

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
        /// write: also upsert, update and delete; admin: also create, delete
        /// and index collections, change aliases, and manage keys (the Keys
        /// service).
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
        #[arg(long, default_value = "made by fathom keys create")]
        description: String,
        /// Make the key expire this long from now: a number and a unit, s,
        /// m, h, d or w (30d, 12h). Servers refuse it from then on.
        #[arg(long, value_name = "DURATION", value_parser = parse_expires_in, conflicts_with = "expires_at")]
        expires_in: Option<TimeDelta>,
        /// Make the key expire at this time (RFC 3339, such as 2027-01-31T00:00:00Z).
        #[arg(long, value_name = "TIME", value_parser = parse_expires_at)]
        expires_at: Option<DateTime<Utc>>,
    },
    /// List keys (ids, roles, bindings, expiry and state; never the keys themselves).
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
            expires_in,
            expires_at,
        } => {
            let now = Utc::now();
            let expires_at = expires_in.map(|delta| now + delta).or(expires_at);
            let request = KeyRequest {
                role: Role::parse(&role),
                tenant: tenant.as_deref(),
                collections: &collections,
                description: &description,
                expires_at,
            };
            create(&store, &request, now).await
        }
        KeysCommand::List => list(&store).await,
        KeysCommand::Revoke { id } => revoke(&store, &id).await,
    };
    store.close().await;
    outcome
}

async fn create(store: &Store, request: &KeyRequest<'_>, now: DateTime<Utc>) -> anyhow::Result<()> {
    let spec = KeySpec::parse(request, now, Limits::default().max_tenant_bytes).map_err(|invalid| {
        let problems: Vec<String> = invalid
            .violations
            .iter()
            .map(|v| format!("{}: {}", flag_of(&v.field), v.description))
            .collect();
        anyhow::anyhow!("cannot create the key: {}", problems.join("; "))
    })?;
    let issued = issue_key(store, spec).await?;
    outln!("{}", issued.text)?;
    eprintln!(
        "created key {} ({}); it is shown only now, so store it safely. Clients send it as `authorization: Bearer \
         <key>` (FATHOM_API_KEY for the CLI and SDKs).",
        issued.record.id,
        grant_summary(&issued.record)
    );
    Ok(())
}

async fn list(store: &Store) -> anyhow::Result<()> {
    let keys = store.list_api_keys().await?;
    if keys.is_empty() {
        eprintln!("no keys: create one with `fathom keys create --role admin`");
        return Ok(());
    }
    let now = Utc::now();
    outln!(
        "{:<12}  {:<6}  {:<16}  {:<24}  {:<20}  {:<20}  {:<20}  {:<7}  DESCRIPTION",
        "ID",
        "ROLE",
        "TENANT",
        "COLLECTIONS",
        "CREATED",
        "EXPIRES",
        "REVOKED",
        "STATE"
    )?;
    let time = |t: Option<DateTime<Utc>>| t.map_or("-".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string());
    for key in &keys {
        outln!(
            "{:<12}  {:<6}  {:<16}  {:<24}  {:<20}  {:<20}  {:<20}  {:<7}  {}",
            key.id,
            key.grant.role,
            key.grant.tenant.as_deref().unwrap_or("*"),
            key.grant
                .collections
                .as_ref()
                .map_or("*".to_owned(), |c| c.iter().cloned().collect::<Vec<_>>().join(",")),
            time(Some(key.created_at)),
            time(key.grant.expires_at),
            time(key.revoked_at),
            match key.state_at(now) {
                KeyState::Active => "active",
                KeyState::Expired => "expired",
                KeyState::Revoked => "revoked",
            },
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
    if let Some(at) = key.grant.expires_at {
        summary.push_str(&format!(", expires at {}", show_time(at)));
    }
    summary
}

/// The flag that sets a CreateKey field, for refusals.
fn flag_of(field: &str) -> &str {
    match field {
        "expire_time" => "--expires-in/--expires-at",
        "role" => "--role",
        "tenant" => "--tenant",
        "description" => "--description",
        collections if collections.starts_with("collections") => "--collection",
        other => other,
    }
}

/// `--expires-in`: a positive whole number and a unit (s, m, h, d or w).
fn parse_expires_in(text: &str) -> Result<TimeDelta, String> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (amount, unit) = text.split_at(unit_at);
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err("a duration is a number and a unit: s, m, h, d or w (such as 30d or 12h)".into()),
    };
    let amount: i64 = amount
        .parse()
        .map_err(|_| "a duration starts with a whole number (such as 30d or 12h)".to_owned())?;
    amount
        .checked_mul(seconds_per_unit)
        .filter(|seconds| *seconds > 0)
        .and_then(TimeDelta::try_seconds)
        .filter(|delta| Utc::now().checked_add_signed(*delta).is_some())
        .ok_or_else(|| "the duration must be more than zero and end before the year 262143".to_owned())
}

/// `--expires-at`: an RFC 3339 time.
fn parse_expires_at(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}: give an RFC 3339 time, such as 2027-01-31T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_durations_are_a_number_and_a_unit() {
        assert_eq!(parse_expires_in("30d"), Ok(TimeDelta::days(30)));
        assert_eq!(parse_expires_in("12h"), Ok(TimeDelta::hours(12)));
        assert_eq!(parse_expires_in("90s"), Ok(TimeDelta::seconds(90)));
        for bad in ["", "30", "d", "0d", "-1d", "1.5h", "30 d", "99999999999999w"] {
            assert!(parse_expires_in(bad).is_err(), "{bad:?}");
        }
        assert!(parse_expires_at("2027-01-31T00:00:00Z").is_ok());
        assert!(parse_expires_at("tomorrow").is_err());
    }
}
