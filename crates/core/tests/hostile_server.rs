//! A server that answers badly: each case is a canned reply from a raw TCP listener to the
//! client's first request (version negotiation, `GET /`). The client must return one clear
//! error line: no panic, no hang, no unbounded read.

use std::time::Duration;

use porthole_core::api::{BackendClient, ClientOptions, Credentials, Endpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `reply` (head and body bytes, then closes) to every connection; returns the URL.
async fn canned(reply: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(&reply).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

async fn connect_error(url: &str) -> String {
    let endpoint = Endpoint::parse(url).unwrap();
    let credentials = Credentials::Keypair {
        access_key: "AKIAHOSTILE000000001".into(),
        secret_key: "secret".into(),
    };
    let options = ClientOptions::default();
    let connecting = BackendClient::connect(&endpoint, &credentials, &options);
    let result = tokio::time::timeout(Duration::from_secs(30), connecting)
        .await
        .expect("a bad reply is an error in bounded time, not a hang");
    let Err(error) = result else {
        panic!("a bad reply is an error");
    };
    let text = error.to_string();
    assert!(!text.contains(['\n', '\r']), "one line: {text:?}");
    text
}

fn reply(head: &str, body: &[u8]) -> Vec<u8> {
    [head.as_bytes(), body].concat()
}

#[tokio::test]
async fn a_huge_reply_is_refused_past_16_mib() {
    let body = vec![b'x'; 20 << 20];
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let error = connect_error(&canned(reply(&head, &body)).await).await;
    assert!(error.contains("larger than 16 MiB"), "{error}");
}

#[tokio::test]
async fn garbage_truncated_and_wrong_json_are_errors() {
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "not JSON",
            reply(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n",
                b"<html>hi!",
            ),
        ),
        (
            "truncated",
            reply(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n",
                br#"{"version": "v8.2024"#,
            ),
        ),
        (
            "wrong shape",
            reply(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n",
                br#"{"version": 12.5}"#,
            ),
        ),
        ("not HTTP", b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()),
    ];
    for (what, bytes) in cases {
        let error = connect_error(&canned(bytes).await).await;
        assert!(!error.is_empty(), "{what}");
        eprintln!("{what}: {error}");
    }
}
