//! API mode over real sockets: `GET /`, signatures, listing, `/apps`, `download_single`.

mod common;

use chrono::{Duration, SecondsFormat, Utc};
use common::*;
use serde_json::{json, Value};

const V8: &str = "v8.20240915";
const V7: &str = "v7.20230615";

async fn problem(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json; charset=utf-8"
    );
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn root_is_anonymous_and_reports_versions() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V7, echo, "")).await;
    let resp = within(http().get(emu.endpoint_url()).send()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"version": V7, "manager": "23.09.10"}));

    // An unknown version header is refused even on the anonymous route.
    let resp = within(
        http()
            .get(emu.endpoint_url())
            .header("X-BackendAI-Version", "v9.20250722")
            .send(),
    )
    .await
    .unwrap();
    let (status, body) = problem(resp).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["type"],
        "https://api.backend.ai/probs/generic-bad-request"
    );
    assert_eq!(body["msg"], "Unsupported API version.");
    emu.shutdown().await;
}

#[tokio::test]
async fn signatures_are_checked_like_the_manager() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V8, echo, "")).await;
    let query = json!({"query": "{ compute_session_list(limit: 1, offset: 0) { total_count } }"})
        .to_string();
    let call = |s: Signing<'static>| {
        let emu = &emu;
        let query = query.clone();
        async move { signed(emu, &s, "POST", "/admin/gql", Some(&query)).await }
    };
    let json_signing = || {
        let mut s = signing(V8);
        s.content_type = Some("application/json");
        s
    };

    // Correct signature.
    let resp = call(json_signing()).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["compute_session_list"]["total_count"], 2);

    // Wrong secret.
    let mut s = json_signing();
    s.secret_key = "wrong";
    let (status, body) = problem(call(s).await).await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "https://api.backend.ai/probs/auth-failed");
    assert_eq!(body["title"], "Credential/signature mismatch.");
    assert_eq!(body["msg"], "Signature mismatch");

    // Unknown access key.
    let mut s = json_signing();
    s.access_key = "AKIANOBODY";
    let (status, body) = problem(call(s).await).await;
    assert_eq!(status, 401);
    assert_eq!(body["msg"], "Access key not found");

    // Clock skew: 16 minutes is refused, 14 minutes (either way) accepted.
    let shifted = |minutes: i64| {
        (Utc::now() + Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Micros, false)
    };
    for (minutes, ok) in [(-16, false), (16, false), (-14, true), (14, true)] {
        let mut s = json_signing();
        s.date = shifted(minutes);
        let resp = call(s).await;
        if ok {
            assert_eq!(resp.status(), 200, "{minutes} min");
        } else {
            let (status, body) = problem(resp).await;
            assert_eq!(status, 400, "{minutes} min");
            assert_eq!(
                body["type"],
                "https://api.backend.ai/probs/invalid-auth-params"
            );
            assert_eq!(
                body["title"],
                "Missing or invalid authorization parameters."
            );
            assert_eq!(body["msg"], "Date/time sync error");
        }
    }

    // `Z` dates, and a sent `Application/JSON; charset=UTF-8` signed as application/json.
    let mut s = json_signing();
    s.date = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    assert_eq!(call(s).await.status(), 200);
    let host = emu.local_addr().to_string();
    let s = json_signing();
    let mut headers = s.headers("POST", "/admin/gql", &host);
    headers.retain(|(k, _)| k != "Content-Type");
    let mut req = http()
        .post(format!("{}/admin/gql", emu.endpoint_url()))
        .header("Content-Type", "Application/JSON; charset=UTF-8")
        .body(query.clone());
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    assert_eq!(within(req.send()).await.unwrap().status(), 200);

    // X-BackendAI-Date alone works too.
    let s = json_signing();
    let headers = s.headers("POST", "/admin/gql", &host);
    let mut req = http()
        .post(format!("{}/admin/gql", emu.endpoint_url()))
        .body(query.clone());
    for (k, v) in &headers {
        let name = if k == "Date" {
            "X-BackendAI-Date"
        } else {
            k.as_str()
        };
        req = req.header(name, v);
    }
    assert_eq!(within(req.send()).await.unwrap().status(), 200);

    // No Authorization header; no version header; a version newer than the server's.
    let resp = within(
        http()
            .post(format!("{}/admin/gql", emu.endpoint_url()))
            .header("Date", now_date())
            .header("X-BackendAI-Version", V8)
            .body(query.clone())
            .send(),
    )
    .await
    .unwrap();
    let (status, body) = problem(resp).await;
    assert_eq!(
        (status, body["msg"].as_str()),
        (401, Some("Unauthorized access"))
    );

    let s = json_signing();
    let mut req = http()
        .post(format!("{}/admin/gql", emu.endpoint_url()))
        .body(query.clone());
    for (k, v) in s.headers("POST", "/admin/gql", &host) {
        if k != "X-BackendAI-Version" {
            req = req.header(k, v);
        }
    }
    let (status, body) = problem(within(req.send()).await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["type"],
        "https://api.backend.ai/probs/invalid-auth-params"
    );
    assert_eq!(body["msg"], "API version missing in request headers");

    let mut s = json_signing();
    s.version = "v9.20250722";
    let (status, body) = problem(call(s).await).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["type"],
        "https://api.backend.ai/probs/generic-bad-request"
    );
    assert_eq!(body["msg"], "Unsupported API version.");

    // An older version than the server's is fine.
    let mut s = json_signing();
    s.version = V7;
    assert_eq!(call(s).await.status(), 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn listing_has_the_managers_shape() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V7, echo, "")).await;

    let all = list(&emu, V7, None).await;
    let list_obj = &all["data"]["compute_session_list"];
    assert_eq!(list_obj["total_count"], 2, "only AK's own sessions: {all}");
    let items = list_obj["items"].as_array().unwrap();
    // Newest first.
    assert_eq!(items[0]["name"], "train-1");
    assert_eq!(items[1]["name"], "queued");
    let item = &items[0];
    let keys: Vec<&str> = item
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "id",
        "name",
        "type",
        "status",
        "status_info",
        "image",
        "scaling_group",
        "group_id",
        "created_at",
        "service_ports",
    ];
    expected.sort_unstable();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected);
    assert_eq!(item["id"], "5a1e0000-0000-4000-8000-00000000a001");
    assert_eq!(item["type"], "INTERACTIVE");
    assert_eq!(item["status"], "RUNNING");
    assert_eq!(item["created_at"], "2024-03-28T05:06:07+00:00");
    // service_ports is a JSON string: parse it twice.
    let ports_text = item["service_ports"].as_str().expect("a JSON string");
    assert!(
        ports_text.starts_with("[{\"name\": \"echo\", \"protocol\": \"tcp\""),
        "{ports_text}"
    );
    let ports: Value = serde_json::from_str(ports_text).unwrap();
    assert_eq!(ports[0]["container_ports"], json!([7007, 7008]));
    assert_eq!(ports[0]["is_inference"], false);
    assert_eq!(ports[1]["name"], "jupyter");
    assert_eq!(ports[1]["url_template"], "http://{host}:{port}/");
    // Not running: null ports.
    assert!(items[1]["service_ports"].is_null());
    assert_eq!(items[1]["status_info"], "no-available-instances");

    // Status filter; total_count ignores limit/offset.
    let running = list(&emu, V7, Some("RUNNING,RESTARTING")).await;
    assert_eq!(running["data"]["compute_session_list"]["total_count"], 1);
    let body = json!({
        "query": "{ compute_session_list(limit: 1, offset: 1) { total_count items { name } } }",
    });
    let paged: Value = post_json(&emu, V7, "/admin/gql", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paged["data"]["compute_session_list"]["total_count"], 2);
    assert_eq!(
        paged["data"]["compute_session_list"]["items"][0]["name"],
        "queued"
    );

    // An unknown status: 200, null list, the KeyError message.
    let bogus = list(&emu, V7, Some("BOGUS")).await;
    assert!(bogus["data"]["compute_session_list"].is_null());
    assert_eq!(bogus["errors"][0]["message"], "'BOGUS'");

    // A malformed query is a GraphQL error, not a crash.
    let body = json!({"query": "{ compute_session_list(limit: 1, offset: 0) { items { nope } }"});
    let resp = post_json(&emu, V7, "/admin/gql", &body).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(v["data"].is_null());
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Syntax Error"),
        "{v}"
    );

    // Missing query: invalid-api-params.
    let resp = post_json(&emu, V7, "/admin/gql", &json!({"variables": {}})).await;
    let (status, body) = problem(resp).await;
    assert_eq!(status, 400);
    assert_eq!(body["data"], json!({"query": "is required"}));

    // The legacy endpoint returns the bare data object.
    let body = json!({"query": "{ compute_session_list(limit: 5, offset: 0) { items { name } } }"});
    let legacy: Value = post_json(&emu, V7, "/admin/graphql", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        legacy["compute_session_list"]["items"][0]["name"],
        "train-1"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn apps_and_unknown_paths() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V8, echo, "")).await;
    let s = signing(V8);
    let resp = signed(&emu, &s, "GET", "/stream/session/train-1/apps", None).await;
    assert_eq!(resp.status(), 200);
    let apps: Value = resp.json().await.unwrap();
    assert_eq!(
        apps,
        json!([
            {"name": "echo", "protocol": "tcp", "ports": [7007, 7008]},
            {"name": "jupyter", "protocol": "http", "ports": [8081], "url_template": "http://{host}:{port}/"},
        ])
    );
    let by_id = signed(
        &emu,
        &signing(V8),
        "GET",
        "/stream/session/5a1e0000-0000-4000-8000-00000000a001/apps",
        None,
    )
    .await;
    assert_eq!(by_id.status(), 200);
    let pending: Value = signed(
        &emu,
        &signing(V8),
        "GET",
        "/stream/session/queued/apps",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(pending, json!([]));
    let (status, body) = problem(
        signed(
            &emu,
            &signing(V8),
            "GET",
            "/stream/session/other/apps",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["title"], "No such session.");
    assert_eq!(body["msg"], "Session (id=other) does not exist.");

    let resp = within(
        http()
            .get(format!("{}/nothing/here", emu.endpoint_url()))
            .send(),
    )
    .await
    .unwrap();
    let (status, body) = problem(resp).await;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "https://api.backend.ai/probs/url-not-found");
    assert_eq!(body["title"], "Unknown URL path.");
    assert_eq!(body["data"], "/nothing/here");
    emu.shutdown().await;
}

#[tokio::test]
async fn download_single_like_23_09_and_24_09() {
    let echo = echo_server().await;
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        key_file.path(),
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nfromdisk\n",
    )
    .unwrap();
    let extra = format!(
        "[[sessions]]\nname = \"disk\"\nfiles = {{ id_container = {:?} }}\n",
        key_file.path().display().to_string()
    );

    // 23.09 (v7): GET with the query or a JSON body; POST is 405.
    let emu = start(&config_toml(V7, echo, &extra)).await;
    let resp = signed(
        &emu,
        &signing(V7),
        "GET",
        "/session/train-1/download_single?file=id_container",
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"
    );
    let mut s = signing(V7);
    s.content_type = Some("application/json");
    let resp = signed(
        &emu,
        &s,
        "GET",
        "/session/disk/download_single",
        Some(r#"{"file": "id_container"}"#),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("fromdisk"));

    let resp = post_json(
        &emu,
        V7,
        "/session/train-1/download_single",
        &json!({"file": "id_container"}),
    )
    .await;
    let (status, body) = problem(resp).await;
    assert_eq!(status, 405);
    assert_eq!(
        body["type"],
        "https://api.backend.ai/probs/method-not-allowed"
    );
    assert_eq!(body["title"], "HTTP Method Not Allowed.");

    let resp = signed(
        &emu,
        &signing(V7),
        "GET",
        "/session/train-1/download_single?file=nope",
        None,
    )
    .await;
    let (status, body) = problem(resp).await;
    assert_eq!(status, 500);
    assert_eq!(
        body["type"],
        "https://api.backend.ai/probs/kernel-execution-failed"
    );
    assert!(body["agent-details"]["exception"]
        .as_str()
        .unwrap()
        .starts_with("FileNotFoundError"));
    emu.shutdown().await;

    // 24.09 (v8): POST with a JSON body; GET is deprecated.
    let emu = start(&config_toml(V8, echo, &extra)).await;
    let resp = post_json(
        &emu,
        V8,
        "/session/train-1/download_single",
        &json!({"file": "id_container"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().starts_with("-----BEGIN"));
    let resp = signed(
        &emu,
        &signing(V8),
        "GET",
        "/session/train-1/download_single?file=id_container",
        None,
    )
    .await;
    let (status, body) = problem(resp).await;
    assert_eq!(status, 400);
    assert_eq!(body["type"], "https://api.backend.ai/probs/deprecated");
    emu.shutdown().await;
}

#[tokio::test]
async fn authorize_returns_the_keypair() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V8, echo, "")).await;
    let ok = within(
        http()
            .post(format!("{}/auth/authorize", emu.endpoint_url()))
            .json(&json!({"type": "keypair", "domain": "default", "username": USER, "password": PASSWORD}))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["data"]["access_key"], AK);
    assert_eq!(body["data"]["secret_key"], SK);
    let bad = within(
        http()
            .post(format!("{}/auth/authorize", emu.endpoint_url()))
            .json(
                &json!({"type": "keypair", "domain": "default", "username": USER, "password": "x"}),
            )
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 401);
    emu.shutdown().await;
}

#[tokio::test]
async fn skip_auth_accepts_unsigned_requests() {
    let echo = echo_server().await;
    let toml =
        config_toml(V8, echo, "").replacen("api_version", "skip_auth = true\napi_version", 1);
    let emu = start(&toml).await;
    let resp = within(
        http()
            .get(format!(
                "{}/stream/session/train-1/apps",
                emu.endpoint_url()
            ))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let mut ws = ws_with_headers(&emu, "/stream/session/train-1/tcpproxy?app=echo", &[])
        .await
        .unwrap();
    send_binary(&mut ws, b"fast").await;
    assert_eq!(read_exact_binary(&mut ws, 4).await.0, b"fast");
    close(&mut ws).await;
    emu.shutdown().await;
}
