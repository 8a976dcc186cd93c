//! Conversions between alias messages and domain aliases.

use fathom_api::v1 as pb;
use pb::alias_action::Action;

use super::error::ApiError;
use super::timestamp_proto::timestamp_to_proto;
use crate::domain::{Alias, AliasActions, AliasKind};

/// The actions of an UpdateAliasesRequest, every bad name reported at once.
pub(super) fn alias_actions(actions: &[pb::AliasAction]) -> Result<AliasActions, ApiError> {
    let unchecked = actions.iter().enumerate().map(|(i, action)| {
        let path = format!("actions[{i}]");
        match &action.action {
            None => (path, None),
            Some(Action::CreateAlias(a)) => (
                format!("{path}.create_alias"),
                Some((AliasKind::Create, a.alias.as_str(), a.collection.as_str())),
            ),
            Some(Action::SwitchAlias(a)) => (
                format!("{path}.switch_alias"),
                Some((AliasKind::Switch, a.alias.as_str(), a.collection.as_str())),
            ),
            Some(Action::DeleteAlias(a)) => (
                format!("{path}.delete_alias"),
                Some((AliasKind::Delete, a.alias.as_str(), "")),
            ),
        }
    });
    Ok(AliasActions::parse("actions", unchecked)?)
}

/// A stored alias as its proto message.
pub(super) fn alias_to_proto(alias: &Alias) -> pb::Alias {
    pb::Alias {
        alias: alias.alias.to_string(),
        collection: alias.collection.to_string(),
        update_time: Some(timestamp_to_proto(alias.updated_at)),
    }
}
