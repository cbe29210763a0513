//! `porthole-testkit`: the fixtures every test of the workspace shares, so that each is
//! written once.
//!
//! | Module | What |
//! |---|---|
//! | [`distance`] | a TCP proxy that makes a local server look far away: delay, jitter, a bandwidth cap |
//! | [`net`] | free ports (never the same twice in a run), a closed port, echo / greeting / sink servers |
//! | [`signed`] | requests and WebSockets signed like a Backend.AI client, and what a refused handshake said |
//! | [`tls`] | a private CA and a TLS front: `wss://` and `https://` to a local server |
//! | [`wait`] | how long a test waits for anything ([`WAIT`]), and waiting for state outside the test |

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod distance;
pub mod net;
pub mod signed;
pub mod tls;
pub mod wait;

pub use net::{
    closed_port, echo_server, free_port, greeting_echo_server, greeting_server, sink_server,
};
pub use wait::{wait_until, within, WAIT};
