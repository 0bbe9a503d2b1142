//! Accounts and sessions against attackers (issue 3), through the public HTTP and WebSocket
//! API, in both run modes.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use astral_common::guard::Role;
use support::assert_error;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::system::Distributed;
use support::{System, User};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

in_both_modes!(
    registration_enforces_the_username_and_password_rules,
    forged_expired_and_ended_tokens_are_refused,
    a_reused_refresh_token_ends_the_whole_session,
    logout_closes_the_sessions_socket_and_refuses_its_token,
    logging_out_everywhere_and_changing_the_password_end_other_sessions,
    the_account_lists_sessions_and_ends_one,
    failed_logins_are_throttled_per_username_and_per_address,
    registrations_are_throttled_per_address,
    sessions_expire_after_30_days_unused_or_a_year_in_all,
    a_browser_keeps_its_refresh_token_in_an_http_only_cookie,
    cookie_sessions_need_an_allowed_origin,
    signing_in_takes_json_from_an_allowed_origin_only,
    rotating_the_signing_key_logs_nobody_out,
);

/// Login CSRF: a page of another site can post a form or `text/plain` to the login route
/// without the browser asking first; such a post is refused (415), and so is JSON whose
/// `Origin` is another site's (403).
async fn signing_in_takes_json_from_an_allowed_origin_only(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let credentials = json!({ "username": alice.name, "password": support::user::PASSWORD });
    let http = reqwest::Client::new();
    let send = async |path: &str, content_type: &str, origin: Option<&str>, body: &Value| {
        let mut request = http
            .post(format!("{}{path}", system.base))
            .header("content-type", content_type)
            .body(body.to_string());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    let refresh = json!({ "refresh_token": alice.refresh_token });
    for (path, body) in [
        ("/api/auth/login", &credentials),
        ("/api/auth/register", &credentials),
        ("/api/auth/refresh", &refresh),
    ] {
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            let (status, answer) = send(path, content_type, None, body).await;
            assert_error(status, &answer, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert_eq!(answer["error"]["code"], "unsupported_media_type", "{path}");
        }
        let (status, answer) =
            send(path, "application/json", Some("http://evil.example"), body).await;
        assert_error(status, &answer, StatusCode::FORBIDDEN);
    }
    let own = system.base.clone();
    let (status, answer) = send(
        "/api/auth/login",
        "application/json; charset=utf-8",
        Some(&own),
        &credentials,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// POSTs JSON without a token.
async fn post(system: &System, path: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", system.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// GET /api/users/me with this bearer token: the status.
async fn me_with(_system: &System, base: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{base}/api/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn registration_enforces_the_username_and_password_rules(system: &System) {
    let name = support::user::unique_name("rules");
    let (status, created) = post(
        system,
        "/api/auth/register",
        json!({ "username": name.to_uppercase(), "password": "long enough" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["user"]["username"],
        name.as_str(),
        "kept in lower case"
    );
    let (status, body) = post(
        system,
        "/api/auth/register",
        json!({ "username": name, "password": "long enough" }),
    )
    .await;
    assert_error(status, &body, StatusCode::CONFLICT);
    let (status, _) = post(
        system,
        "/api/auth/login",
        json!({ "username": name.to_uppercase(), "password": "long enough" }),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "usernames compare case-insensitively"
    );

    let long_name = "a".repeat(33);
    let huge_name = "b".repeat(10_000);
    for bad in [
        "ab",
        long_name.as_str(),
        "has space",
        "semi;colon",
        "émile",
        "<script>",
        huge_name.as_str(),
    ] {
        let (status, body) = post(
            system,
            "/api/auth/register",
            json!({ "username": bad, "password": "long enough" }),
        )
        .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    let fresh = support::user::unique_name("pw");
    for bad in ["short".to_owned(), "x".repeat(129)] {
        let (status, body) = post(
            system,
            "/api/auth/register",
            json!({ "username": fresh, "password": bad }),
        )
        .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    for bad in [
        json!({ "username": 5, "password": "long enough" }),
        json!({ "username": fresh }),
        json!([fresh]),
        json!("x"),
    ] {
        let (status, body) = post(system, "/api/auth/register", bad).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    let (status, _) = post(
        system,
        "/api/auth/register",
        json!({ "username": fresh, "password": "x".repeat(128) }),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "128 bytes is the ceiling, not past it"
    );
}

/// A session left unused for 30 days, or one a year old however used, no longer refreshes
/// (its clock turned back in the auth database, as an operator's insider view would see it).
async fn sessions_expire_after_30_days_unused_or_a_year_in_all(system: &System) {
    const DAY_MS: i64 = 24 * 60 * 60 * 1000;
    let alice = User::register(&system.base, "alice").await;
    let idle = alice.login_again().await;
    let old = alice.login_again().await;
    let pool = astral_common::db::connect(&system.auth_database_url)
        .await
        .unwrap();
    let now = astral_common::time::now_ms();
    let age = async |column: Column, session: &User, days: i64| {
        let (session_id,): (i64,) =
            sqlx::query_as("SELECT id FROM sessions WHERE refresh_hash = $1")
                .bind(refresh_hash(&session.refresh_token))
                .fetch_one(&pool)
                .await
                .unwrap();
        let sql = match column {
            Column::LastUsed => "UPDATE sessions SET last_used_at_ms = $1 WHERE id = $2",
            Column::Created => "UPDATE sessions SET created_at_ms = $1 WHERE id = $2",
        };
        sqlx::query(sql)
            .bind(now - days * DAY_MS)
            .bind(session_id)
            .execute(&pool)
            .await
            .unwrap();
    };
    age(Column::LastUsed, &alice, 29).await;
    age(Column::LastUsed, &idle, 31).await;
    age(Column::Created, &old, 366).await;
    pool.close().await;
    let refresh = async |session: &User| {
        post(
            system,
            "/api/auth/refresh",
            json!({ "refresh_token": session.refresh_token }),
        )
        .await
    };
    let (status, _) = refresh(&alice).await;
    assert_eq!(status, StatusCode::OK, "29 days unused is still fresh");
    for expired in [&idle, &old] {
        let (status, body) = refresh(expired).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED);
    }
    let (status, sessions) = alice.get("/api/users/me/sessions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        1,
        "expired sessions are not listed: {sessions}"
    );
}

/// The web client asks for its refresh token in a cookie scripts cannot read, sent only to the
/// session routes and never by another site; refreshing with it rotates it.
async fn a_browser_keeps_its_refresh_token_in_an_http_only_cookie(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let http = reqwest::Client::new();
    let login = http
        .post(format!("{}/api/auth/login", system.base))
        .json(
            &json!({ "username": alice.name, "password": alice.password, "refresh_cookie": true }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let refresh_cookie = |response: &reqwest::Response| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("astral_refresh="))
            .unwrap()
    };
    let cookie = refresh_cookie(&login);
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api/auth",
        "Max-Age=2592000",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let body: Value = login.json().await.unwrap();
    assert!(body["refresh_token"].is_null(), "not in the body: {body}");
    assert!(body["token"].is_string());
    let value = |cookie: &str| cookie.split(';').next().unwrap().to_owned();
    let refresh_with = async |cookie: &str| {
        http.post(format!("{}/api/auth/refresh", system.base))
            .header("cookie", value(cookie))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
    };
    let refreshed = refresh_with(&cookie).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let rotated = refresh_cookie(&refreshed);
    assert_ne!(value(&rotated), value(&cookie));
    let body: Value = refreshed.json().await.unwrap();
    assert!(
        body["refresh_token"].is_null() && body["token"].is_string(),
        "{body}"
    );
    // The spent cookie, presented again (stolen), ends the session; so no cookie works now.
    assert_eq!(
        refresh_with(&cookie).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh_with(&rotated).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Without a cookie or a token there is nothing to refresh.
    assert_eq!(
        post(system, "/api/auth/refresh", json!({})).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Logging out clears both cookies.
    let response = http
        .post(format!("{}/api/auth/logout", system.base))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    for name in ["astral_session=;", "astral_refresh=;"] {
        assert!(
            cleared
                .iter()
                .any(|c| c.starts_with(name) && c.contains("Max-Age=0")),
            "{cleared:?}"
        );
    }
}

enum Column {
    LastUsed,
    Created,
}

/// What the auth service stores in place of a refresh token.
fn refresh_hash(token: &str) -> String {
    use sha2::Digest as _;
    B64URL.encode(sha2::Sha256::digest(token.as_bytes()))
}

/// The auth service's current signing key, read from its database as an insider could who
/// also holds the key-encryption key that seals it there (`auth.kek`: in the all-in-one's
/// data directory, or the deployment's secrets).
async fn server_signing_key(system: &System) -> (String, jsonwebtoken::EncodingKey) {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let pool = astral_common::db::connect(&system.auth_database_url)
        .await
        .unwrap();
    let (kid, stored): (String, String) =
        sqlx::query_as("SELECT kid, seed FROM signing_keys ORDER BY created_at_ms DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    let kek = match system.data_dir() {
        Some(dir) => dir.join("auth.kek"),
        None => system
            .role_env(astral_common::guard::Role::Auth)
            .into_iter()
            .find(|(key, _)| key == "ASTRAL_KEY_ENCRYPTION_KEY")
            .map(|(_, path)| path.into())
            .unwrap(),
    };
    let seed = astral_auth::Kek::load(&kek)
        .unwrap()
        .open(&kid, &stored)
        .unwrap();
    let seed: [u8; 32] = seed.try_into().unwrap();
    let der = ed25519_dalek::SigningKey::from_bytes(&seed)
        .to_pkcs8_der()
        .unwrap();
    (kid, jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()))
}

fn now_s() -> i64 {
    astral_common::time::now_ms() / 1000
}

async fn forged_expired_and_ended_tokens_are_refused(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let bob = User::register(&system.base, "bob").await;
    assert_eq!(
        me_with(system, &system.base, &alice.token).await,
        StatusCode::OK
    );
    let parts: Vec<&str> = alice.token.split('.').collect();
    let header: Value = serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert!(header["kid"].is_string(), "tokens carry a key id");

    // Payload tampering: alice's signature over a payload naming bob.
    let mut as_bob = claims.clone();
    as_bob["sub"] = json!(bob.id);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        B64URL.encode(as_bob.to_string()),
        parts[2]
    );
    // alg none, with and without a signature.
    let none_header =
        B64URL.encode(json!({ "alg": "none", "typ": "JWT", "kid": header["kid"] }).to_string());
    let none = format!("{none_header}.{}.", B64URL.encode(as_bob.to_string()));
    let none_signed = format!(
        "{none_header}.{}.{}",
        B64URL.encode(as_bob.to_string()),
        parts[2]
    );
    // HMAC with guessed keys: a common secret, and the public key id.
    let mut hmac_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hmac_header.kid = header["kid"].as_str().map(str::to_owned);
    let hmac_guess = jsonwebtoken::encode(
        &hmac_header,
        &as_bob,
        &jsonwebtoken::EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    let kid_bytes = header["kid"].as_str().unwrap().as_bytes();
    let hmac_kid = jsonwebtoken::encode(
        &hmac_header,
        &as_bob,
        &jsonwebtoken::EncodingKey::from_secret(kid_bytes),
    )
    .unwrap();
    // A well-signed token that expired, and one from a key the server never had.
    let (kid, key) = server_signing_key(system).await;
    let mut real_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    real_header.kid = Some(kid);
    let mut expired_claims = claims.clone();
    expired_claims["iat"] = json!(now_s() - 3600);
    expired_claims["exp"] = json!(now_s() - 1800);
    let expired = jsonwebtoken::encode(&real_header, &expired_claims, &key).unwrap();
    let unknown_seed = [7u8; 32];
    let unknown_der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(
        &ed25519_dalek::SigningKey::from_bytes(&unknown_seed),
    )
    .unwrap();
    let mut unknown_header = real_header.clone();
    unknown_header.kid = Some("123".into());
    let unknown_key = jsonwebtoken::encode(
        &unknown_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(unknown_der.as_bytes()),
    )
    .unwrap();
    // The server's own key signing a valid-looking token is accepted: the test is sound.
    let genuine = jsonwebtoken::encode(&real_header, &claims, &key).unwrap();
    assert_eq!(
        me_with(system, &system.base, &genuine).await,
        StatusCode::OK
    );

    for (what, token) in [
        ("tampered payload", tampered),
        ("alg none", none),
        ("alg none with a signature", none_signed),
        ("HMAC with a guessed secret", hmac_guess),
        ("HMAC keyed with the key id", hmac_kid),
        ("expired", expired),
        ("unknown key", unknown_key),
        ("garbage", "a.b.c".to_owned()),
    ] {
        let response = reqwest::Client::new()
            .get(format!("{}/api/users/me", system.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"]["code"], "unauthenticated", "{what}");
    }

    // The token of a session that ended is refused though it has not expired.
    let (status, _) = alice.post("/api/auth/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        me_with(system, &system.base, &alice.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me_with(system, &system.base, &genuine).await,
        StatusCode::UNAUTHORIZED,
        "any token of that session"
    );
    // ...and a WebSocket identifying with it is closed with 4001.
    let mut ws = alice.on(&system.base);
    let url = format!("{}/ws", system.base.replacen("http", "ws", 1));
    let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.socket = Some(socket);
    assert_eq!(ws.next_frame().await["op"], "hello");
    ws.send(json!({ "op": "identify", "d": { "token": alice.token } }))
        .await;
    assert_eq!(ws.next_frame().await["d"]["code"], "unauthenticated");
    assert_eq!(ws.expect_close().await, 4001);
}

async fn a_reused_refresh_token_ends_the_whole_session(system: &System) {
    let mut alice = User::register(&system.base, "alice").await;
    alice.connect().await;
    let stolen = alice.refresh_token.clone();
    let (status, renewed) = alice
        .post("/api/auth/refresh", json!({ "refresh_token": stolen }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let new_access = renewed["token"].as_str().unwrap().to_owned();
    let new_refresh = renewed["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        me_with(system, &system.base, &new_access).await,
        StatusCode::OK
    );

    // The old refresh token comes back: theft. The whole session ends.
    let (status, body) = alice
        .post("/api/auth/refresh", json!({ "refresh_token": stolen }))
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    alice.expect_event("session.ended").await;
    assert_eq!(alice.expect_close().await, 4001);
    let (status, body) = alice
        .post("/api/auth/refresh", json!({ "refresh_token": new_refresh }))
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me_with(system, &system.base, &new_access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me_with(system, &system.base, &alice.token).await,
        StatusCode::UNAUTHORIZED
    );
    // Her other logins are not touched.
    let other = alice.login_again().await;
    assert_eq!(
        me_with(system, &system.base, &other.token).await,
        StatusCode::OK
    );
}

async fn logout_closes_the_sessions_socket_and_refuses_its_token(system: &System) {
    let mut alice = User::register(&system.base, "alice").await;
    alice.connect().await;
    let mut elsewhere = alice.login_again().await;
    elsewhere.connect().await;
    let (status, _) = alice.post("/api/auth/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    alice.expect_event("session.ended").await;
    assert_eq!(alice.expect_close().await, 4001);
    assert_eq!(
        me_with(system, &system.base, &alice.token).await,
        StatusCode::UNAUTHORIZED
    );
    // The other session hears of it but stays open and usable.
    let ended = elsewhere.expect_event("session.ended").await;
    assert!(ended["session_id"].is_string());
    elsewhere.send(json!({ "op": "heartbeat" })).await;
    elsewhere.expect_op("heartbeat_ack").await;
    assert_eq!(
        me_with(system, &system.base, &elsewhere.token).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_closes_sockets_on_every_gateway_within_a_second() {
    let Some(system) = System::distributed_with(Distributed {
        gateways: 2,
        ..Distributed::default()
    })
    .await
    else {
        return;
    };
    let mut on_first = User::register(&system.bases[0], "alice").await;
    let mut on_second = on_first.on(&system.bases[1]);
    on_first.connect().await;
    on_second.connect().await;
    let (status, _) = on_first.post("/api/auth/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for user in [&mut on_first, &mut on_second] {
        let closed =
            tokio::time::timeout(std::time::Duration::from_secs(1), user.expect_close()).await;
        assert_eq!(
            closed.expect("closed within a second"),
            4001,
            "{}",
            user.base
        );
    }
    for base in &system.bases {
        assert_eq!(
            me_with(&system, base, &on_first.token).await,
            StatusCode::UNAUTHORIZED,
            "{base}"
        );
    }
    system.stop().await;
}

async fn logging_out_everywhere_and_changing_the_password_end_other_sessions(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let laptop = alice.login_again().await;
    let phone = alice.login_again().await;

    // A wrong current password changes nothing.
    let wrong = json!({ "current_password": "not my password", "new_password": "a new secret" });
    let (status, body) = laptop.post("/api/users/me/password", wrong).await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    let too_short = json!({ "current_password": alice.password, "new_password": "short" });
    let (status, body) = laptop.post("/api/users/me/password", too_short).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let same = json!({ "current_password": alice.password, "new_password": alice.password });
    let (status, body) = laptop.post("/api/users/me/password", same).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(
        me_with(system, &system.base, &phone.token).await,
        StatusCode::OK,
        "the current password again changes nothing: the other sessions stay"
    );

    let change = json!({ "current_password": alice.password, "new_password": "a new secret" });
    let (status, _) = laptop.post("/api/users/me/password", change).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        me_with(system, &system.base, &laptop.token).await,
        StatusCode::OK,
        "the session that changed it stays"
    );
    assert_eq!(
        me_with(system, &system.base, &phone.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me_with(system, &system.base, &alice.token).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = post(
        system,
        "/api/auth/login",
        json!({ "username": alice.name, "password": alice.password }),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old password no longer works"
    );
    let (status, _) = post(
        system,
        "/api/auth/login",
        json!({ "username": alice.name, "password": "a new secret" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = laptop.post("/api/auth/logout-all", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        me_with(system, &system.base, &laptop.token).await,
        StatusCode::UNAUTHORIZED
    );
    let (_, sessions) = post(
        system,
        "/api/auth/login",
        json!({ "username": alice.name, "password": "a new secret" }),
    )
    .await;
    let fresh = sessions["token"].as_str().unwrap();
    let listed = reqwest::Client::new()
        .get(format!("{}/api/users/me/sessions", system.base))
        .bearer_auth(fresh)
        .send()
        .await
        .unwrap();
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(
        listed["sessions"].as_array().unwrap().len(),
        1,
        "only the new login is live: {listed}"
    );
}

async fn the_account_lists_sessions_and_ends_one(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let phone = alice.login_again().await;
    let (status, me) = alice.get("/api/users/me").await;
    assert_eq!(
        (status, me["id"].as_str()),
        (StatusCode::OK, Some(alice.id.as_str()))
    );
    let (status, listed) = alice.get("/api/users/me/sessions").await;
    assert_eq!(status, StatusCode::OK);
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{listed}");
    for session in sessions {
        for field in ["id", "user_agent", "created_at", "last_used_at"] {
            assert!(session[field].is_string(), "{field} in {session}");
        }
    }
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, _) = alice
        .call(
            reqwest::Method::DELETE,
            &format!("/api/users/me/sessions/{other}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        me_with(system, &system.base, &phone.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me_with(system, &system.base, &alice.token).await,
        StatusCode::OK
    );
    for unknown in [other.as_str(), "1234567890123456789", "not-an-id"] {
        let (status, body) = alice
            .call(
                reqwest::Method::DELETE,
                &format!("/api/users/me/sessions/{unknown}"),
                None,
            )
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND);
    }
    // Someone else's session cannot be ended.
    let bob = User::register(&system.base, "bob").await;
    let (_, listed) = alice.get("/api/users/me/sessions").await;
    let mine = listed["sessions"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = bob
        .call(
            reqwest::Method::DELETE,
            &format!("/api/users/me/sessions/{mine}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        me_with(system, &system.base, &alice.token).await,
        StatusCode::OK
    );
}

/// An HTTP client whose connections come from `ip` (any of 127.0.0.0/8 reaches the gateway).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// POST `body` to `path` from `client`: the status and the Retry-After, if any.
async fn post_from(
    client: &reqwest::Client,
    system: &System,
    path: &str,
    body: &Value,
) -> (StatusCode, Option<u64>) {
    let response = client
        .post(format!("{}{path}", system.base))
        .json(body)
        .send()
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().parse().unwrap());
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS {
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    }
    (status, retry_after)
}

/// 100 guesses at once at one account get at most 5 password checks (the rest 429, the
/// right password among them or not); its owner, from another address, still logs in.
async fn failed_logins_are_throttled_per_username_and_per_address(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let wrong = json!({ "username": alice.name, "password": "wrong password" });
    let right = json!({ "username": alice.name, "password": alice.password });
    let attacker = client_from("127.0.0.3");
    let guesses: Vec<_> = (0..100)
        .map(|n| {
            let (attacker, body) = (
                attacker.clone(),
                if n == 50 {
                    right.clone()
                } else {
                    wrong.clone()
                },
            );
            async move { post_from(&attacker, system, "/api/auth/login", &body).await }
        })
        .collect();
    let answers = futures::future::join_all(guesses).await;
    let checked = answers
        .iter()
        .filter(|(status, _)| *status != StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        (1..=5).contains(&checked),
        "{checked} passwords checked: {answers:?}"
    );
    for (status, retry_after) in &answers {
        if *status == StatusCode::TOO_MANY_REQUESTS {
            assert!(
                retry_after.is_some_and(|s| (1..=60).contains(&s)),
                "{retry_after:?}"
            );
        } else {
            assert!(
                [StatusCode::OK, StatusCode::UNAUTHORIZED].contains(status),
                "{status}"
            );
        }
    }
    // The owner, elsewhere, is not locked out by someone else's guesses.
    let owner = client_from("127.0.0.4");
    assert_eq!(
        post_from(&owner, system, "/api/auth/login", &right).await.0,
        StatusCode::OK
    );
    // The guessing address waits, even with the right password.
    let (status, retry_after) = post_from(&attacker, system, "/api/auth/login", &right).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        retry_after.is_some_and(|s| (50..=60).contains(&s)),
        "{retry_after:?}"
    );

    // One address trying many usernames (unknown ones too) is throttled as well.
    let sprayer = client_from("127.0.0.5");
    let mut statuses = Vec::new();
    for _ in 0..21 {
        let guess = json!({ "username": support::user::unique_name("nobody"), "password": "wrong password" });
        statuses.push(
            post_from(&sprayer, system, "/api/auth/login", &guess)
                .await
                .0,
        );
    }
    assert!(
        statuses[..20]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(
        statuses[20],
        StatusCode::TOO_MANY_REQUESTS,
        "the 21st failure from one address"
    );
    let bob = User::register(&system.base, "bob").await;
    let bob_right = json!({ "username": bob.name, "password": bob.password });
    assert_eq!(
        post_from(&sprayer, system, "/api/auth/login", &bob_right)
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS,
        "the address waits, whoever it logs in as"
    );
    assert_eq!(
        post_from(&owner, system, "/api/auth/login", &bob_right)
            .await
            .0,
        StatusCode::OK,
        "other addresses do not"
    );
}

/// An address creates 100 accounts in ten minutes, all at once if it likes; the 101st waits
/// (and a taken name is refused without counting).
async fn registrations_are_throttled_per_address(system: &System) {
    let client = client_from("127.0.0.6");
    let account = |name: String| json!({ "username": name, "password": support::user::PASSWORD });
    let taken = User::register(&system.base, "taken").await;
    for _ in 0..3 {
        let (status, _) = post_from(
            &client,
            system,
            "/api/auth/register",
            &account(taken.name.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
    }
    let registrations: Vec<_> = (0..101)
        .map(|_| {
            let (client, body) = (client.clone(), account(support::user::unique_name("reg")));
            async move { post_from(&client, system, "/api/auth/register", &body).await }
        })
        .collect();
    let answers = futures::future::join_all(registrations).await;
    let created = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 100, "{answers:?}");
    let refused = answers
        .iter()
        .find(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .unwrap();
    assert!(
        refused.1.is_some_and(|s| (500..=600).contains(&s)),
        "{refused:?}"
    );
    let elsewhere = client_from("127.0.0.7");
    let (status, _) = post_from(
        &elsewhere,
        system,
        "/api/auth/register",
        &account(support::user::unique_name("reg")),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "another address is not held back"
    );
}

/// Opens a WebSocket with these extra headers; the HTTP status if the upgrade is refused.
async fn open_ws(system: &System, headers: &[(&'static str, String)]) -> Result<User, StatusCode> {
    let url = format!("{}/ws", system.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => {
            let mut user = User::register(&system.base, "observer").await;
            user.socket = Some(socket);
            Ok(user)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status()),
        Err(error) => panic!("websocket: {error}"),
    }
}

async fn cookie_sessions_need_an_allowed_origin(system: &System) {
    let name = support::user::unique_name("cookie");
    let response = reqwest::Client::new()
        .post(format!("{}/api/auth/register", system.base))
        .json(&json!({ "username": name, "password": "long enough" }))
        .send()
        .await
        .unwrap();
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    assert!(
        !set_cookie.contains("Secure"),
        "not configured for HTTPS: {set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let user_id = body["user"]["id"].as_str().unwrap();
    let own_origin = system.base.clone();
    let http = reqwest::Client::new();

    // Reading with the cookie alone works.
    let me = http
        .get(format!("{}/api/users/me", system.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    // Changing state with the cookie needs the gateway's own origin.
    let request = |origin: Option<&str>| {
        let mut request = http
            .post(format!("{}/api/friends/requests", system.base))
            .header("cookie", &cookie)
            .json(&json!({ "username": "nobody_at_all" }));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    assert_eq!(
        request(Some("https://evil.example"))
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(request(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        request(Some(&own_origin)).await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "allowed; the user is unknown"
    );

    // The WebSocket upgrade checks Origin; with the cookie, no identify is needed.
    let refused = open_ws(
        system,
        &[
            ("origin", "https://evil.example".into()),
            ("cookie", cookie.clone()),
        ],
    )
    .await;
    assert_eq!(refused.err(), Some(StatusCode::FORBIDDEN));
    let mut socket = open_ws(
        system,
        &[("origin", own_origin.clone()), ("cookie", cookie.clone())],
    )
    .await
    .unwrap();
    assert_eq!(socket.next_frame().await["op"], "hello");
    let ready = socket.expect_op("ready").await;
    assert_eq!(ready["d"]["user"]["id"], user_id);

    // An explicit identify wins over the cookie (set, say, by another site's login CSRF).
    let mut socket = open_ws(system, &[("origin", own_origin), ("cookie", cookie)])
        .await
        .unwrap();
    assert_eq!(socket.next_frame().await["op"], "hello");
    socket
        .send(json!({ "op": "identify", "d": { "token": socket.token } }))
        .await;
    let ready = socket.expect_op("ready").await;
    assert_eq!(ready["d"]["user"]["id"], socket.id.as_str());
    assert_ne!(socket.id, user_id);
}

async fn rotating_the_signing_key_logs_nobody_out(system: &System) {
    use astral_proto::auth::{RotateSigningKeyRequest, auth_service_client::AuthServiceClient};
    let alice = User::register(&system.base, "alice").await;
    let kid = |token: &str| -> String {
        let header: Value =
            serde_json::from_slice(&B64URL.decode(token.split('.').next().unwrap()).unwrap())
                .unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    let channel = system.channel(Role::Admin, "auth");
    let new_key = AuthServiceClient::new(channel)
        .rotate_signing_key(RotateSigningKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_ne!(new_key.kid, kid(&alice.token));
    let later = alice.login_again().await;
    assert_eq!(kid(&later.token), new_key.kid, "the new key signs");
    assert_eq!(
        me_with(system, &system.base, &later.token).await,
        StatusCode::OK,
        "the gateway learns the new key"
    );
    assert_eq!(
        me_with(system, &system.base, &alice.token).await,
        StatusCode::OK,
        "the old key still verifies"
    );
}

#[tokio::test]
async fn no_secret_appears_in_the_logs() {
    let Some(system) = System::distributed_with(Distributed {
        rust_log: "debug",
        ..Distributed::default()
    })
    .await
    else {
        return;
    };
    let mut alice = User::register(&system.base, "alice").await;
    alice.connect().await;
    let wrong = json!({ "username": alice.name, "password": "a wrong guess" });
    assert_eq!(
        post(&system, "/api/auth/login", wrong).await.0,
        StatusCode::UNAUTHORIZED
    );
    let second = alice.login_again().await;
    let (_, renewed) = second
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": second.refresh_token }),
        )
        .await;
    let change = json!({ "current_password": alice.password, "new_password": "brand new secret" });
    assert_eq!(
        alice.post("/api/users/me/password", change).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        alice.post("/api/auth/logout", json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    alice.expect_event("session.ended").await;

    let secrets = [
        alice.password.clone(),
        "a wrong guess".to_owned(),
        "brand new secret".to_owned(),
        alice.token.clone(),
        alice.refresh_token.clone(),
        second.token.clone(),
        second.refresh_token.clone(),
        renewed["token"].as_str().unwrap().to_owned(),
        renewed["refresh_token"].as_str().unwrap().to_owned(),
        "$argon2id$".to_owned(),
    ];
    let logs = system.logs();
    assert!(
        logs.iter().map(|(_, text)| text.len()).sum::<usize>() > 1000,
        "debug logs were written"
    );
    for (name, text) in &logs {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{name} logs a secret ({}…)",
                &secret[..6.min(secret.len())]
            );
        }
    }
    system.stop().await;
}

/// Text a client chooses (here a username) is escaped in the text logs: a newline
/// cannot forge a log line, an escape code cannot reach the operator's terminal.
#[tokio::test]
async fn user_text_is_escaped_in_the_logs() {
    let Some(system) = System::distributed_with(Distributed {
        rust_log: "debug",
        ..Distributed::default()
    })
    .await
    else {
        return;
    };
    let forged = "FORGED LINE admin logged in";
    let hostile = format!("evil\n{forged}\u{1b}[2J\u{1b}[31m");
    let http = reqwest::Client::new();
    for path in ["/api/auth/login", "/api/auth/register"] {
        let response = http
            .post(format!("{}{path}", system.base))
            .json(&json!({ "username": hostile, "password": "whatever pass" }))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{path}");
    }
    let alice = User::register(&system.base, "alice").await;
    alice.login_again().await;
    let logs = system.logs();
    assert!(
        logs.iter().any(|(_, text)| text.contains("FORGED LINE")),
        "the attempt was logged (escaped), so the check below means something"
    );
    for (name, text) in &logs {
        for line in text.lines() {
            assert!(
                !line.trim_start().starts_with(forged),
                "{name}: a forged line: {line}"
            );
        }
        assert!(!text.contains('\u{1b}'), "{name}: a raw escape code");
    }
    system.stop().await;
}

#[tokio::test]
async fn an_unknown_username_and_a_wrong_password_get_the_same_answer() {
    let system = System::all_in_one().await;
    let alice = User::register(&system.base, "alice").await;
    let (status, wrong_password) = post(
        &system,
        "/api/auth/login",
        json!({ "username": alice.name, "password": "nope nope" }),
    )
    .await;
    // Error bodies both (`post` reads a body that is not JSON as null, and null equals null).
    assert_error(status, &wrong_password, StatusCode::UNAUTHORIZED);
    let (status, unknown) = post(
        &system,
        "/api/auth/login",
        json!({ "username": "nobody_here", "password": "nope nope" }),
    )
    .await;
    assert_error(status, &unknown, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password, unknown);
    system.stop().await;
}
