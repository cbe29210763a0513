//! Loopback ports and small servers for apps behind a tunnel.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Every port [`free_port`] and [`closed_port`] handed out in this process.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback port free right now that no earlier call in this process returned: for
/// servers that cannot take port 0. Tests running in parallel never get the same port,
/// even after the first one released it.
pub fn free_port() -> u16 {
    try_free_port().unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// [`free_port`], as a `Result` (for the benchmark, which reports instead of panicking).
pub fn try_free_port() -> io::Result<u16> {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut handed = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        if handed.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
}

/// A loopback address nothing listens on (a port from [`free_port`], so no test of this
/// process binds it later).
pub fn closed_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A TCP echo server on 127.0.0.1 for as long as the runtime lives.
pub async fn echo_server() -> SocketAddr {
    greeting_echo_server(b"").await
}

/// [`echo_server`], as a `Result`.
pub async fn try_echo_server() -> io::Result<SocketAddr> {
    try_greeting_echo_server(b"").await
}

/// An echo server that writes `greeting` to each connection first.
pub async fn greeting_echo_server(greeting: &'static [u8]) -> SocketAddr {
    try_greeting_echo_server(greeting)
        .await
        .unwrap_or_else(|e| panic!("cannot start an echo server: {e}"))
}

async fn try_greeting_echo_server(greeting: &'static [u8]) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            tokio::spawn(async move {
                if socket.write_all(greeting).await.is_ok() {
                    let (mut r, mut w) = socket.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }
            });
        }
    });
    Ok(addr)
}

/// A server that writes `greeting` to each connection and closes it.
pub async fn greeting_server(greeting: &'static [u8]) -> SocketAddr {
    let listener = bind().await;
    let addr = listener.local_addr().expect("local_addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(greeting).await;
            let _ = stream.shutdown().await;
        }
    });
    addr
}

/// A server that reports, per connection, everything it read once the peer closed.
pub async fn sink_server() -> (SocketAddr, mpsc::UnboundedReceiver<Vec<u8>>) {
    let listener = bind().await;
    let addr = listener.local_addr().expect("local_addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut all = Vec::new();
                let _ = stream.read_to_end(&mut all).await;
                let _ = tx.send(all);
            });
        }
    });
    (addr, rx)
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("cannot bind a loopback server: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_never_handed_out_twice() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
    }

    #[tokio::test]
    async fn the_echo_server_greets_then_echoes() {
        let addr = greeting_echo_server(b"hi\n").await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi\nping");
    }
}
