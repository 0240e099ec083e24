//! `lookup-events`: the 50 most recent experience events of a random person's profile, by a
//! random identity of that person (`GET /data/core/ups/access/entities` with
//! `schema.name=_xdm.context.experienceevent&orderby=-timestamp&limit=50`): the call-centre
//! screen's timeline. Preparation is `lookup`'s, with every web event loaded.

use super::lookup::{prepare_for, Lookup, Reads};
use super::{Availability, ScenarioContext};
use crate::error::Result;

pub(crate) const MEASURES: &str =
    "latest 50 experience events of a profile by any identity (identity graph stitched)";

pub(crate) fn availability() -> Availability {
    Availability::Available
}

/// Generates, loads and returns the request source.
pub(crate) async fn prepare(context: &ScenarioContext) -> Result<Lookup> {
    prepare_for(context, Reads::Events).await
}
