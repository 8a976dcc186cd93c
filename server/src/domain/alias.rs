//! Aliases: second names of collections, and the changes UpdateAliases makes.
//!
//! An alias points at one collection and can be switched to another at once
//! (a blue-green re-index). Alias names are [`CollectionName`]s: they follow
//! the same rules and share the namespace of collection names.

use chrono::{DateTime, Utc};

use super::{CollectionName, InvalidRequest, Violations};

/// An alias as stored: its name and the collection it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The alias's name.
    pub alias: CollectionName,
    /// The collection it points at (a collection's own name, never an alias).
    pub collection: CollectionName,
    /// When it was created or last switched.
    pub updated_at: DateTime<Utc>,
}

/// What one action of UpdateAliases does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasChange {
    /// Create `alias`, pointing at `collection`.
    Create {
        /// The new alias.
        alias: CollectionName,
        /// The collection it points at.
        collection: CollectionName,
    },
    /// Point the existing `alias` at `collection`.
    Switch {
        /// The alias to switch.
        alias: CollectionName,
        /// The collection it points at from now on.
        collection: CollectionName,
    },
    /// Delete `alias`.
    Delete {
        /// The alias to delete.
        alias: CollectionName,
    },
}

impl AliasChange {
    /// The alias the change names.
    pub fn alias(&self) -> &CollectionName {
        match self {
            Self::Create { alias, .. } | Self::Switch { alias, .. } | Self::Delete { alias } => alias,
        }
    }

    /// The collection the alias points at after the change, if it survives it.
    pub fn target(&self) -> Option<&CollectionName> {
        match self {
            Self::Create { collection, .. } | Self::Switch { collection, .. } => Some(collection),
            Self::Delete { .. } => None,
        }
    }
}

/// One action of UpdateAliases, with the request path of its fields
/// (`actions[2].switch_alias`), so a refusal of it names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasAction {
    /// Path of the action's message in the request, such as `actions[2].switch_alias`.
    pub path: String,
    /// What it does.
    pub change: AliasChange,
}

impl AliasAction {
    /// Path of the action's `alias` field.
    pub fn alias_field(&self) -> String {
        format!("{}.alias", self.path)
    }

    /// Path of the action's `collection` field.
    pub fn collection_field(&self) -> String {
        format!("{}.collection", self.path)
    }
}

/// The actions of one UpdateAliases request: 1 to [`AliasActions::MAX`], to
/// apply in order, all or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasActions(Vec<AliasAction>);

/// One action as the request holds it, before its names are parsed: the
/// path of its message, its kind, the alias and (for create and switch) the
/// collection. `None` for an action that sets no kind.
pub type UncheckedAliasAction<'a> = (String, Option<(AliasKind, &'a str, &'a str)>);

/// The kinds of alias action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasKind {
    /// Create an alias.
    Create,
    /// Switch an alias.
    Switch,
    /// Delete an alias (its collection is ignored).
    Delete,
}

impl AliasActions {
    /// The most actions one request may hold.
    pub const MAX: usize = 100;

    /// Parses the actions of a request, reporting every bad name at once;
    /// `field` names the list (`actions`).
    pub fn parse<'a>(
        field: &str,
        actions: impl ExactSizeIterator<Item = UncheckedAliasAction<'a>>,
    ) -> Result<Self, InvalidRequest> {
        let mut violations = Violations::default();
        if actions.len() == 0 {
            violations.add(
                field,
                "name at least one action: create_alias, switch_alias or delete_alias",
            );
        } else if actions.len() > Self::MAX {
            violations.add(
                field,
                format!("{} actions; at most {} fit in one request", actions.len(), Self::MAX),
            );
        }
        let mut parsed = Vec::with_capacity(actions.len().min(Self::MAX));
        for (path, action) in actions.take(Self::MAX) {
            let Some((kind, alias, collection)) = action else {
                violations.add(&path, "set one of create_alias, switch_alias or delete_alias");
                continue;
            };
            let alias = violations.take(CollectionName::parse(&format!("{path}.alias"), alias));
            let target = match kind {
                AliasKind::Delete => None,
                AliasKind::Create | AliasKind::Switch => {
                    Some(violations.take(CollectionName::parse(&format!("{path}.collection"), collection)))
                }
            };
            let change = match (kind, alias, target) {
                (AliasKind::Create, Some(alias), Some(Some(collection))) => AliasChange::Create { alias, collection },
                (AliasKind::Switch, Some(alias), Some(Some(collection))) => AliasChange::Switch { alias, collection },
                (AliasKind::Delete, Some(alias), None) => AliasChange::Delete { alias },
                _ => continue,
            };
            parsed.push(AliasAction { path, change });
        }
        violations.finish(|| Self(parsed))
    }

    /// The actions, in request order.
    pub fn iter(&self) -> impl Iterator<Item = &AliasAction> {
        self.0.iter()
    }

    /// Every alias the actions name, sorted, each once.
    pub fn aliases(&self) -> Vec<&CollectionName> {
        let mut names: Vec<_> = self.0.iter().map(|a| a.change.alias()).collect();
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(actions: &[Option<(AliasKind, &str, &str)>]) -> Result<AliasActions, InvalidRequest> {
        AliasActions::parse(
            "actions",
            actions
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("actions[{i}]"), *a))
                .collect::<Vec<_>>()
                .into_iter(),
        )
    }

    fn fields(error: InvalidRequest) -> Vec<String> {
        error.violations.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn actions_parse_in_order_and_name_their_aliases_once() {
        let actions = parse(&[
            Some((AliasKind::Create, "docs", "docs_v1")),
            Some((AliasKind::Switch, "docs", "docs_v2")),
            Some((AliasKind::Delete, "old", "")),
        ])
        .unwrap();
        let names: Vec<_> = actions.aliases().into_iter().map(CollectionName::as_str).collect();
        assert_eq!(names, ["docs", "old"]);
        assert_eq!(
            actions.iter().nth(1).unwrap().collection_field(),
            "actions[1].collection"
        );
    }

    #[test]
    fn every_bad_name_and_missing_kind_is_reported_at_once() {
        let error = parse(&[
            Some((AliasKind::Create, "Docs", "docs_v1")),
            None,
            Some((AliasKind::Switch, "docs", "")),
        ])
        .unwrap_err();
        assert_eq!(
            fields(error),
            ["actions[0].alias", "actions[1]", "actions[2].collection"]
        );
    }

    #[test]
    fn no_actions_and_too_many_are_refused() {
        assert_eq!(fields(parse(&[]).unwrap_err()), ["actions"]);
        let many = vec![Some((AliasKind::Delete, "a", "")); AliasActions::MAX + 1];
        assert_eq!(fields(parse(&many).unwrap_err()), ["actions"]);
    }
}
