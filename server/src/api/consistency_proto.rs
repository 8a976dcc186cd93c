//! A read's `ReadConsistency` as the domain's [`ReadConsistency`].

use fathom_api::v1 as pb;
use pb::read_consistency::Choice;

use crate::domain::{ConsistencyToken, InvalidRequest, ReadConsistency};

/// The consistency a read asks for in its `consistency` field; unset is eventual.
pub(super) fn consistency_from_proto(
    consistency: Option<&pb::ReadConsistency>,
) -> Result<ReadConsistency, InvalidRequest> {
    Ok(match consistency.and_then(|c| c.choice.as_ref()) {
        None | Some(Choice::Eventual(_)) => ReadConsistency::Eventual,
        Some(Choice::Strong(_)) => ReadConsistency::Strong,
        Some(Choice::AfterToken(token)) => {
            ReadConsistency::AtLeast(ConsistencyToken::parse("consistency.after_token", token)?)
        }
    })
}
