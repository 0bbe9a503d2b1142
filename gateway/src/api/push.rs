//! Web Push: the key browsers subscribe with, and their subscriptions (kept by the
//! messaging service, which sends the pushes).

use crate::error::ApiResult;
use crate::json::Body;
use crate::session::Caller;
use crate::state::Messaging;
use astral_proto::messaging as pb;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

/// A browser's `PushSubscription.toJSON()`: its endpoint and keys (anything else it
/// carries, such as `expirationTime`, is ignored).
#[derive(Deserialize)]
pub struct SubscriptionBody {
    endpoint: String,
    keys: Keys,
}

#[derive(Deserialize)]
pub struct Keys {
    p256dh: String,
    auth: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    endpoint: String,
}

/// `GET /api/push/key`.
pub async fn key(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    let key = messaging
        .get_push_key(caller.request(pb::GetPushKeyRequest {}))
        .await?
        .into_inner();
    Ok(Json(json!({ "public_key": key.public_key })))
}

/// `POST /api/push/subscriptions`: 201, this browser's pushes now come to the caller.
pub async fn subscribe(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Body(body): Body<SubscriptionBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request = pb::PushSubscription {
        endpoint: body.endpoint.clone(),
        p256dh: body.keys.p256dh,
        auth: body.keys.auth,
    };
    messaging
        .add_push_subscription(caller.request(request))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "endpoint": body.endpoint })),
    ))
}

/// `DELETE /api/push/subscriptions`: 204, whether or not there was one.
pub async fn unsubscribe(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Body(body): Body<EndpointBody>,
) -> ApiResult<StatusCode> {
    let request = pb::PushEndpoint {
        endpoint: body.endpoint,
    };
    messaging
        .remove_push_subscription(caller.request(request))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
