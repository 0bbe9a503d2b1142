//! `GET/PATCH /api/users/me/settings`: the user's privacy settings, each kept by the service
//! whose data it governs (presence by social, read receipts by messaging) and put together
//! here; neither service asks the other.

use crate::error::ApiResult;
use crate::json::{self, Body};
use crate::session::Caller;
use crate::state::Services;
use astral_proto::{messaging, social};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    #[serde(default)]
    share_presence: Option<bool>,
    #[serde(default)]
    share_read_receipts: Option<bool>,
}

/// `GET /api/users/me/settings`.
pub async fn get(State(services): State<Services>, caller: Caller) -> ApiResult<Json<Value>> {
    let (mut social, mut messaging) = (services.social, services.messaging);
    let (presence, receipts) = tokio::try_join!(
        social.get_settings(caller.request(social::GetSettingsRequest {})),
        messaging.get_settings(caller.request(messaging::GetSettingsRequest {})),
    )?;
    Ok(Json(json::settings(
        Some(presence.into_inner().share_presence),
        Some(receipts.into_inner().share_read_receipts),
    )))
}

/// `PATCH /api/users/me/settings`: what is left out stays as it is; answers them all.
pub async fn update(
    State(services): State<Services>,
    caller: Caller,
    Body(body): Body<SettingsBody>,
) -> ApiResult<Json<Value>> {
    let (mut social, mut messaging) = (services.social, services.messaging);
    let presence = social::UpdateSocialSettings {
        share_presence: body.share_presence,
    };
    let receipts = messaging::UpdateMessagingSettings {
        share_read_receipts: body.share_read_receipts,
    };
    let (presence, receipts) = tokio::try_join!(
        social.update_settings(caller.request(presence)),
        messaging.update_settings(caller.request(receipts)),
    )?;
    Ok(Json(json::settings(
        Some(presence.into_inner().share_presence),
        Some(receipts.into_inner().share_read_receipts),
    )))
}
