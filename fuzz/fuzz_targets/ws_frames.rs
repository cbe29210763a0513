//! The tunnel's WebSocket frame reader on whatever a server sends, delivered in pieces of
//! every size: never a panic or a hang, and no more payload handed out than came in.
#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll};

use libfuzzer_sys::fuzz_target;
use porthole_core::tunnel::link::{Event, Link, Role};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The input, at most `step` bytes per read; writes go nowhere.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.step.min(self.data.len()).min(buf.remaining());
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Trickle<'_> {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&first, data)) = input.split_first() else {
        return;
    };
    let role = if first & 0x80 == 0 { Role::Client } else { Role::Server };
    let step = usize::from(first & 0x7F) + 1;
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let (mut rx, _tx) = Link::new(Trickle { data, step }, role, Vec::new()).split();
        let mut payload = 0usize;
        // Every event consumes input, so this ends; the bound makes a hang a failure.
        for _ in 0..=data.len() + 1 {
            match rx.next().await {
                Ok(Event::Data(bytes)) => {
                    assert!(!bytes.is_empty());
                    payload += bytes.len();
                    assert!(payload <= data.len());
                }
                Ok(Event::Ping(body)) => assert!(body.len() <= 125),
                Ok(Event::Close(Some((_, reason)))) => assert!(reason.len() <= 4 * 123),
                Ok(Event::Other | Event::Close(None)) => {}
                Ok(Event::Eof) | Err(_) => return,
            }
        }
        panic!("the reader did not end on {} bytes", data.len());
    });
});
