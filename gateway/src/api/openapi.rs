//! `GET /api/openapi.json`: the OpenAPI 3 document of the HTTP API, generated from the same
//! table of endpoints the router is built from.

use super::endpoint::Endpoint;
use crate::error::{Channel, ErrorCode};
use serde_json::{Map, Value, json};

/// The whole document of `endpoints`.
pub fn document(endpoints: &[Endpoint]) -> Value {
    let mut paths = Map::new();
    for endpoint in endpoints {
        let path = format!("/api{}", endpoint.path);
        let mut parameters: Vec<Value> = path_parameters(endpoint.path)
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        parameters.extend(endpoint.query.iter().map(|(name, description)| {
            json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } })
        }));
        let (status, schema) = endpoint.ok;
        let mut ok = json!({ "description": "success" });
        if let Some(schema) = schema {
            ok["content"] = content(schema);
        }
        let mut operation = json!({
            "summary": endpoint.summary,
            "parameters": parameters,
            "responses": {
                status.to_string(): ok,
                "400": error("invalid input"),
                "401": error("not authenticated"),
                "403": error("not allowed"),
                "404": error("not found (also what you may not know exists)"),
                "409": error("conflict"),
                "429": error("rate limited; see Retry-After"),
                "503": error("a service is unavailable; see Retry-After"),
            },
        });
        // Signing in (register, login, refresh) takes JSON only: login CSRF.
        if endpoint.body.is_some() && !endpoint.authenticated {
            operation["responses"]["415"] = error("the body is not Content-Type: application/json");
        }
        if let Some(body) = endpoint.body {
            operation["responses"]["408"] =
                error("the body did not arrive within 30 s; the connection is closed");
            operation["requestBody"] = json!({ "required": true, "content": content(body) });
        }
        // Files: uploads have a size limit, downloads byte ranges.
        if endpoint.body == Some(FILE) {
            operation["responses"]["413"] = error("the file is larger than 25 MiB");
        }
        if endpoint.ok.1 == Some(FILE) {
            operation["responses"]["206"] =
                json!({ "description": "the bytes a Range asked for", "content": content(FILE) });
            operation["responses"]["416"] = error("the Range lies outside the file");
        }
        if endpoint.authenticated {
            operation["security"] = json!([{ "bearer": [] }, { "cookie": [] }]);
        }
        let item = paths.entry(path).or_insert_with(|| json!({}));
        item[endpoint.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Astral",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Astral's HTTP API. The WebSocket protocol (GET /ws) is described in docs/protocol.md.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA)" },
                "cookie": { "type": "apiKey", "in": "cookie", "name": crate::session::COOKIE },
            },
            "schemas": schemas(),
        },
    })
}

/// The schema name of raw bytes (an upload's body, a download's answer).
const FILE: &str = "File";

/// A body of `schema`: JSON, or raw bytes for [`FILE`].
fn content(schema: &str) -> Value {
    if schema == FILE {
        json!({ "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } })
    } else {
        json!({ "application/json": { "schema": reference(schema) } })
    }
}

fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|part| part.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
}

fn reference(schema: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{schema}") })
}

fn error(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": reference("Error") } } })
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required })
}

fn string() -> Value {
    json!({ "type": "string" })
}

/// The codes an HTTP answer may carry (docs/api.md, "Error codes").
fn error_code() -> Value {
    let codes: Vec<&str> = ErrorCode::ALL
        .into_iter()
        .filter(|code| code.channel() != Channel::WebSocket)
        .map(ErrorCode::as_str)
        .collect();
    json!({ "type": "string", "enum": codes })
}

fn nullable_string() -> Value {
    json!({ "type": "string", "nullable": true })
}

fn integer() -> Value {
    json!({ "type": "integer", "format": "int64" })
}

fn array_of(schema: &str) -> Value {
    json!({ "type": "array", "items": reference(schema) })
}

fn schemas() -> Value {
    let mut schemas = Map::new();
    let mut add = |name: &str, schema: Value| {
        schemas.insert(name.to_owned(), schema);
    };
    add(
        "Error",
        object(
            json!({ "error": object(json!({ "code": error_code(), "message": string() }), &["code", "message"]) }),
            &["error"],
        ),
    );
    add(
        "User",
        object(
            json!({ "id": string(), "username": string() }),
            &["id", "username"],
        ),
    );
    add(
        "Credentials",
        object(
            json!({
                "username": string(),
                "password": string(),
                "refresh_cookie": {
                    "type": "boolean",
                    "description": "Keep the refresh token in the HttpOnly astral_refresh cookie (Path=/api/auth) instead of the body"
                }
            }),
            &["username", "password"],
        ),
    );
    add(
        "RefreshToken",
        object(
            json!({ "refresh_token": {
                "type": "string",
                "description": "Absent: the astral_refresh cookie's, whose successor goes back there"
            } }),
            &[],
        ),
    );
    add(
        "SignedIn",
        object(
            json!({ "token": string(), "refresh_token": nullable_string(), "user": reference("User") }),
            &["token", "refresh_token", "user"],
        ),
    );
    add(
        "PasswordChange",
        object(
            json!({ "current_password": string(), "new_password": string() }),
            &["current_password", "new_password"],
        ),
    );
    add(
        "Session",
        object(
            json!({ "id": string(), "user_agent": string(), "created_at": string(), "last_used_at": string(), "current": { "type": "boolean" } }),
            &["id", "user_agent", "created_at", "last_used_at", "current"],
        ),
    );
    add(
        "Sessions",
        object(json!({ "sessions": array_of("Session") }), &["sessions"]),
    );
    add(
        "Username",
        object(json!({ "username": string() }), &["username"]),
    );
    add(
        "UserId",
        object(json!({ "user_id": string() }), &["user_id"]),
    );
    add(
        "FriendRequest",
        object(
            json!({ "id": string(), "from": reference("User"), "to": reference("User"), "created_at": string(), "accepted": { "type": "boolean" } }),
            &["id", "from", "to", "created_at"],
        ),
    );
    add(
        "Accepted",
        object(json!({ "friend": reference("User") }), &["friend"]),
    );
    add(
        "Presence",
        object(
            json!({ "status": { "type": "string", "enum": ["online", "idle", "offline"] }, "last_seen_at": nullable_string() }),
            &["status", "last_seen_at"],
        ),
    );
    add(
        "Friend",
        object(
            json!({ "id": string(), "username": string(), "presence": reference("Presence") }),
            &["id", "username", "presence"],
        ),
    );
    add(
        "Settings",
        object(
            json!({ "share_presence": { "type": "boolean" }, "share_read_receipts": { "type": "boolean" } }),
            &["share_presence", "share_read_receipts"],
        ),
    );
    add(
        "SettingsChange",
        object(
            json!({ "share_presence": { "type": "boolean" }, "share_read_receipts": { "type": "boolean" } }),
            &[],
        ),
    );
    add(
        "Friends",
        object(
            json!({ "friends": array_of("Friend"), "incoming": array_of("FriendRequest"), "outgoing": array_of("FriendRequest"), "next_after": nullable_string() }),
            &["friends", "incoming", "outgoing"],
        ),
    );
    add(
        "Blocks",
        object(json!({ "blocked": array_of("User") }), &["blocked"]),
    );
    add(
        "Preview",
        object(
            json!({ "id": string(), "author_id": string(), "content": string(), "created_at": string(), "deleted": { "type": "boolean" }, "attachment_count": integer() }),
            &[
                "id",
                "author_id",
                "content",
                "created_at",
                "deleted",
                "attachment_count",
            ],
        ),
    );
    add(
        "Chat",
        object(
            json!({
                "id": string(), "kind": { "type": "string", "enum": ["direct", "group"] }, "name": string(), "owner_id": nullable_string(),
                "members": array_of("User"), "last_seq": integer(), "unread": integer(), "read_only": { "type": "boolean" },
                "last_activity_at": string(), "last_message": { "allOf": [reference("Preview")], "nullable": true },
                "muted": { "type": "boolean", "description": "yours; in answers only, never in events" },
                "read_states": {
                    "type": "array",
                    "description": "how far members who share read receipts have read (none if you do not share); in answers only, never in events",
                    "items": object(json!({ "user_id": string(), "seq": integer() }), &["user_id", "seq"]),
                },
            }),
            &[
                "id",
                "kind",
                "name",
                "members",
                "last_seq",
                "unread",
                "read_only",
            ],
        ),
    );
    add("Chats", array_of("Chat"));
    add(
        "NewGroup",
        object(
            json!({ "name": string(), "member_ids": { "type": "array", "items": string() } }),
            &["name"],
        ),
    );
    add("Rename", object(json!({ "name": string() }), &["name"]));
    add(
        "PushKey",
        object(
            json!({ "public_key": { "type": "string", "description": "the VAPID public key: an uncompressed P-256 point, base64url" } }),
            &["public_key"],
        ),
    );
    add(
        "PushSubscription",
        object(
            json!({
                "endpoint": { "type": "string", "description": "https:// on a public address, at most 2048 characters" },
                "keys": object(json!({ "p256dh": string(), "auth": string() }), &["p256dh", "auth"]),
            }),
            &["endpoint", "keys"],
        ),
    );
    add(
        "PushEndpoint",
        object(json!({ "endpoint": string() }), &["endpoint"]),
    );
    add(
        "ChatSettings",
        object(json!({ "muted": { "type": "boolean" } }), &[]),
    );
    add("ReadMarker", object(json!({ "seq": integer() }), &["seq"]));
    add("Reaction", object(json!({ "emoji": string() }), &["emoji"]));
    add(
        "Message",
        object(
            json!({
                "id": string(), "chat_id": string(), "seq": integer(), "version": integer(), "author_id": string(),
                "content": string(), "nonce": nullable_string(), "created_at": string(), "edited_at": nullable_string(),
                "deleted": { "type": "boolean" }, "reply_to": { "allOf": [reference("Preview")], "nullable": true },
                "mentions": { "type": "array", "items": string() },
                "reactions": { "type": "array", "items": object(json!({ "emoji": string(), "count": integer(), "user_ids": { "type": "array", "items": string() } }), &["emoji", "count", "user_ids"]) },
                "kind": { "type": "string", "enum": ["user", "system"] },
                "attachments": array_of("Attachment"),
                "system": {
                    "allOf": [object(json!({
                        "type": { "type": "string", "enum": ["created", "renamed", "member_added", "member_removed", "member_left", "owner_changed"] },
                        "user_id": string(), "name": string(),
                    }), &["type"])],
                    "nullable": true,
                },
            }),
            &[
                "id",
                "chat_id",
                "seq",
                "version",
                "author_id",
                "content",
                "created_at",
                "deleted",
                "kind",
            ],
        ),
    );
    add("Messages", array_of("Message"));
    add(
        "Attachment",
        object(
            json!({
                "id": string(), "filename": string(), "content_type": string(), "size": integer(),
                "width": { "type": "integer", "nullable": true }, "height": { "type": "integer", "nullable": true },
            }),
            &["id", "filename", "content_type", "size", "width", "height"],
        ),
    );
    add(
        "SearchResults",
        object(
            json!({
                "results": { "type": "array", "items": object(json!({
                    "message": reference("Message"),
                    "highlights": { "type": "array", "items": object(json!({ "start": integer(), "end": integer() }), &["start", "end"]) },
                }), &["message", "highlights"]) },
                "next_before": nullable_string(),
            }),
            &["results", "next_before"],
        ),
    );
    add(
        "NewMessage",
        object(
            json!({ "content": string(), "nonce": string(), "reply_to": string(), "attachment_ids": { "type": "array", "items": string(), "maxItems": 10 } }),
            &[],
        ),
    );
    add("Edit", object(json!({ "content": string() }), &["content"]));
    Value::Object(schemas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::endpoints;

    fn build() -> Value {
        document(&endpoints())
    }

    #[test]
    fn every_schema_referenced_is_defined() {
        let document = build();
        let text = document.to_string();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for reference in text.split("#/components/schemas/").skip(1) {
            let name: String = reference
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            assert!(
                schemas.contains_key(&name),
                "{name} is referenced but not defined"
            );
        }
    }

    #[test]
    fn every_route_is_documented_with_its_path_parameters() {
        let document = build();
        let get = &document["paths"]["/api/chats/{chat_id}/messages"]["get"];
        let names: Vec<&str> = get["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["chat_id", "before", "after", "limit"]);
        assert_eq!(
            document["paths"]
                .as_object()
                .unwrap()
                .values()
                .map(|p| p.as_object().unwrap().len())
                .sum::<usize>(),
            endpoints().len()
        );
    }
}
